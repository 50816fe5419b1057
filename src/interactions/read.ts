/** read and vread: http.html#read, #vread. Stored JSON text is returned as is. */
import { enforceRead, enforceVersion } from '../auth/policy.js';
import { gone, notFound } from '../fhir/outcome.js';
import type { StoredVersion } from '../store/resource-store.js';
import type { InteractionContext, InteractionResult } from './context.js';
import { etag, readClient } from './context.js';

function render(v: StoredVersion | undefined, what: string): InteractionResult {
  if (!v) throw notFound(`${what} is not known`);
  if (v.deleted || v.content === null) {
    // 410 carries the deletion's version so clients can tell when it went.
    const e = gone(`${what} has been deleted`);
    Object.assign(e.headers, { ETag: etag(v.versionId), 'Last-Modified': new Date(v.lastUpdated).toUTCString() });
    throw e;
  }
  return { status: 200, body: v.content, version: v };
}

export async function readResource(ctx: InteractionContext, resourceType: string, id: string): Promise<InteractionResult> {
  await enforceRead(ctx, resourceType, id); // scopes and patient compartment (src/auth/policy.ts)
  return render(await ctx.store.current(readClient(ctx), resourceType, id), `${resourceType}/${id}`);
}

export async function vreadResource(ctx: InteractionContext, resourceType: string, id: string, versionId: string): Promise<InteractionResult> {
  await enforceRead(ctx, resourceType, id);
  const n = /^\d+$/.test(versionId) ? Number(versionId) : Number.NaN;
  const v = Number.isNaN(n) ? undefined : await ctx.store.version(readClient(ctx), resourceType, id, n);
  if (!v && !(await ctx.store.current(readClient(ctx), resourceType, id))) throw notFound(`${resourceType}/${id} is not known`);
  await enforceVersion(ctx, v); // that version's own compartment (src/auth/policy.ts)
  return render(v, `${resourceType}/${id}/_history/${versionId}`);
}
