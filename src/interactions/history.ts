/** history at instance, type and system level: http.html#history, keyset-paged. */
import { enforceHistory, filterHistory } from '../auth/policy.js';
import { badRequest } from '../fhir/outcome.js';
import type { HistoryCursor, StoredVersion } from '../store/resource-store.js';
import { bundleText, type BundleEntryText } from './bundle-json.js';
import type { InteractionContext, InteractionResult } from './context.js';
import { etag, readClient } from './context.js';
import { dateRange } from './instant.js';

export const HISTORY_DEFAULT_COUNT = 50;
export const HISTORY_MAX_COUNT = 1000;

export interface HistoryTarget {
  resourceType?: string;
  id?: string;
}

function encodeCursor(v: StoredVersion): string {
  return Buffer.from(JSON.stringify([v.lastUpdated, v.resourceType, v.id, v.versionId])).toString('base64url');
}

function decodeCursor(text: string): HistoryCursor {
  try {
    const [lastUpdated, resourceType, id, versionId] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as [string, string, string, number];
    if (typeof lastUpdated !== 'string' || typeof id !== 'string' || typeof versionId !== 'number') throw new Error('shape');
    return { lastUpdated, resourceType, id, versionId };
  } catch {
    throw badRequest('The _cursor parameter is not one this server issued', ['_cursor']);
  }
}

function methodOf(v: StoredVersion): string {
  if (v.deleted) return 'DELETE';
  return v.versionId === 1 ? 'POST' : 'PUT';
}

export async function history(ctx: InteractionContext, target: HistoryTarget, params: URLSearchParams): Promise<InteractionResult> {
  const countText = params.get('_count');
  const count = countText === null ? HISTORY_DEFAULT_COUNT : Number(countText);
  if (!Number.isInteger(count) || count < 0) throw badRequest('_count must be a non-negative integer', ['_count']);
  const since = params.get('_since');
  const at = params.get('_at');
  const cursor = params.get('_cursor');
  const limit = Math.min(count, HISTORY_MAX_COUNT);
  await enforceHistory(ctx, target); // scopes and patient compartment (src/auth/policy.ts)
  const found = limit === 0 ? [] : await ctx.store.history(readClient(ctx), {
    ...target,
    since: since === null ? undefined : dateRange(since, '_since').low,
    at: at === null ? undefined : dateRange(at, '_at'),
    count: limit,
    after: cursor === null ? undefined : decodeCursor(cursor),
  });
  // Entries the token cannot see are left out; paging still follows the unfiltered rows.
  const rows = await filterHistory(ctx, found);

  const path = [target.resourceType, target.id].filter(Boolean).join('/');
  const base = `${ctx.baseUrl}${path ? `/${path}` : ''}/_history`;
  const kept = new URLSearchParams();
  if (since !== null) kept.set('_since', since);
  if (at !== null) kept.set('_at', at);
  kept.set('_count', String(limit));
  const self = new URLSearchParams(kept);
  if (cursor !== null) self.set('_cursor', cursor);
  const links = [{ relation: 'self', url: `${base}?${self}` }];
  if (limit > 0 && found.length === limit) {
    const next = new URLSearchParams(kept);
    next.set('_cursor', encodeCursor(found[found.length - 1]!));
    links.push({ relation: 'next', url: `${base}?${next}` });
  }
  const entries: BundleEntryText[] = rows.map((v) => {
    const url = `${v.resourceType}/${v.id}`;
    return {
      fullUrl: `${ctx.baseUrl}/${url}`,
      resource: v.content ?? undefined,
      request: { method: methodOf(v), url: v.versionId === 1 && !v.deleted ? v.resourceType : url },
      response: {
        status: v.deleted ? '204' : v.versionId === 1 ? '201' : '200',
        etag: etag(v.versionId),
        lastModified: v.lastUpdated,
      },
    };
  });
  return { status: 200, body: bundleText({ type: 'history', links, entries }) };
}
