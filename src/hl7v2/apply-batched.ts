/**
 * The batched write of mapped entries (apply.ts chooses it when canBatch): every identity is
 * resolved before anything is written, so all new resources go in with one insert.
 */
import { randomUUID } from 'node:crypto';
import type { Identifier, Resource } from 'fhir/r4.js';
import { preconditionFailed } from '../fhir/outcome.js';
import { copyWithReferences } from '../fhir/references.js';
import { normalizeQuery } from '../interactions/matching.js';
import type { Writer, WriteOutcome } from '../interactions/writer.js';
import type { NewVersion, StoredVersion } from '../store/resource-store.js';
import { entryError, matchAll, type ApplyOptions, type Condition, type WrittenResource } from './apply-common.js';
import type { PlanEntry } from './mapper.js';
import { ownOrderCondition } from './own-orders.js';

const tokenEscape = (s: string) => s.replace(/[\\,|$]/g, (c) => `\\${c}`);
const identifierTokens = (resource: Resource) =>
  ((resource as { identifier?: Identifier[] }).identifier ?? []).map((i) => `${resource.resourceType}:${tokenEscape(i.system ?? '')}|${tokenEscape(i.value ?? '')}`);

/**
 * Whether the entries can be resolved all at once, before anything is written: no entry's
 * condition (or id) may find a resource another entry of the same message writes. Sequentially, a
 * later condition would see the earlier entry's new resource; resolved up front it would not.
 */
export function canBatch(order: PlanEntry[]): boolean {
  const ids = new Set<string>();
  const owners = new Map<string, PlanEntry>();
  for (const e of order) {
    if (e.identity.kind === 'id') {
      const key = `${e.resource.resourceType}/${e.identity.id}`;
      if (ids.has(key)) return false;
      ids.add(key);
    }
    for (const t of identifierTokens(e.resource)) owners.set(t, e);
  }
  for (const e of order) {
    if (e.identity.kind !== 'conditional') continue;
    if (!e.identity.query.startsWith('identifier=') || e.identity.query.includes('&')) return false;
    const list = decodeURIComponent(e.identity.query.slice('identifier='.length));
    for (const token of list.split(/(?<!\\),/)) {
      const owner = owners.get(`${e.resource.resourceType}:${token}`);
      if (owner && owner !== e) return false;
    }
  }
  return true;
}

/**
 * The same writes with fewer statements: every identity is resolved first (conditions locked in a
 * stable order, then matched; stable ids looked up), so each entry's final id is known and
 * references can be rewritten before anything is written; then all new resources go in with one
 * batched insert (one statement for the rows, one per index table) and the updates one by one.
 */
export async function applyBatched(w: Writer, order: PlanEntry[], options: ApplyOptions): Promise<{ written: WrittenResource[]; resolved: Map<string, string> }> {
  const store = w.ctx.store;
  type Decision = { kind: 'new'; id: string } | { kind: 'update'; id: string; match?: StoredVersion } | { kind: 'existing'; version: StoredVersion };
  const decisions = new Map<PlanEntry, Decision>();
  const conditional = order
    .filter((e) => e.identity.kind === 'conditional')
    .map((e) => ({ e, key: `${e.resource.resourceType}?${normalizeQuery((e.identity as { query: string }).query)}` }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  // Three statements resolve every condition: references that already exist are found without a
  // lock (the attending doctor of every visit: concurrent messages must not serialise on it); the
  // rest — conditional updates, and references still missing — are locked at once in a stable
  // order and matched again under their locks.
  type Conditional = { e: PlanEntry; identity: Extract<PlanEntry['identity'], { kind: 'conditional' }> };
  const items: Conditional[] = conditional.map(({ e }) => ({ e, identity: e.identity as Conditional['identity'] }));
  const condition = (c: Conditional): Condition => {
    const resourceType = c.e.resource.resourceType;
    return { e: c.e, resourceType, query: c.identity.query, fallback: ownOrderCondition(resourceType, c.identity.query, options.ownPlacerSystem) };
  };
  const references = items.filter((c) => c.identity.mode === 'reference');
  const found = await matchAll(w, references.map(condition));
  const matched = new Map<Conditional, StoredVersion[]>();
  references.forEach((c, i) => found[i]!.length === 1 && matched.set(c, found[i]!));
  const toLock = items.filter((c) => !matched.has(c));
  await store.lockConditions(w.tx, toLock.map((c) => ({ resourceType: c.e.resource.resourceType, normalizedQuery: normalizeQuery(c.identity.query) })));
  const underLock = await matchAll(w, toLock.map(condition));
  toLock.forEach((c, i) => matched.set(c, underLock[i]!));
  for (const c of items) {
    const matches = matched.get(c)!;
    if (matches.length > 1) throw entryError(c.e, preconditionFailed(`The condition '${c.identity.query}' matches ${matches.length} resources`));
    const match = matches[0];
    if (!match) decisions.set(c.e, { kind: 'new', id: randomUUID() });
    else if (c.identity.mode === 'reference') decisions.set(c.e, { kind: 'existing', version: match });
    else decisions.set(c.e, { kind: 'update', id: match.id, match });
  }
  const byId = order.filter((e) => e.identity.kind === 'id');
  const existing = await store.currentMany(w.tx, byId.map((e) => ({ resourceType: e.resource.resourceType, id: (e.identity as { id: string }).id })));
  for (const e of order) {
    if (e.identity.kind === 'create') decisions.set(e, { kind: 'new', id: randomUUID() });
    if (e.identity.kind !== 'id') continue;
    const key = `${e.resource.resourceType}/${e.identity.id}`;
    decisions.set(e, existing.has(key) ? { kind: 'update', id: e.identity.id } : { kind: 'new', id: e.identity.id });
  }

  const resolved = new Map<string, string>();
  for (const e of order) {
    const d = decisions.get(e)!;
    resolved.set(e.fullUrl, `${e.resource.resourceType}/${d.kind === 'existing' ? d.version.id : d.id}`);
  }
  const created: Array<NewVersion> = [];
  const outcomes = new Map<PlanEntry, WrittenResource>();
  const updates: Array<{ e: PlanEntry; resource: Resource; id: string }> = [];
  for (const e of order) {
    const d = decisions.get(e)!;
    if (d.kind === 'existing') {
      outcomes.set(e, { reference: `${d.version.resourceType}/${d.version.id}`, versionId: d.version.versionId, outcome: 'existing' });
      continue;
    }
    // A copy: the transaction may be retried (deadlock), and the plan must stay as mapped.
    let resource = copyWithReferences(e.resource, (ref) => (ref.startsWith('urn:uuid:') ? resolved.get(ref) : undefined));
    try {
      resource = w.check(resource, resource.resourceType);
    } catch (error) {
      throw entryError(e, error);
    }
    if (d.kind === 'new') {
      const v = w.prepareCreate(resource, d.id);
      created.push(v);
      outcomes.set(e, { reference: `${v.resourceType}/${v.id}`, versionId: v.versionId, outcome: 'created' });
      continue;
    }
    const preserve = e.identity.kind === 'conditional' ? e.identity.preserve : undefined;
    if (preserve && d.match?.content) {
      const stored = JSON.parse(d.match.content) as Record<string, unknown>;
      const merged: Record<string, unknown> = { ...resource };
      for (const key of preserve) if (merged[key] === undefined && stored[key] !== undefined) merged[key] = stored[key];
      resource = merged as unknown as Resource;
    }
    updates.push({ e, resource: { ...resource, id: d.id }, id: d.id });
  }
  if (created.length > 0) await w.insertPrepared(created);
  for (const u of updates) {
    let out: WriteOutcome;
    try {
      out = await w.update(u.resource, u.id);
    } catch (error) {
      throw entryError(u.e, error);
    }
    const v = out.version!;
    outcomes.set(u.e, { reference: `${v.resourceType}/${v.id}`, versionId: v.versionId, outcome: out.kind });
  }
  return { written: order.map((e) => outcomes.get(e)!), resolved };
}
