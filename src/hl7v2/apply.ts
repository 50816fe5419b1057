/**
 * Write a mapped message through the one write path (src/interactions/writer.ts), inside the
 * caller's database transaction, so the resources commit together with the message row.
 *
 * Why not a transaction Bundle through processBundle: the message row must be in the same
 * database transaction (processBundle opens its own), and the identities here need no
 * rewriting of conditions. Entries are written so that everything a resource refers to is
 * written before it; its urn:uuid references then become Type/id. Conditional writes hold the
 * Writer's condition locks to the end of the transaction, so concurrent messages about the same
 * patient never create it twice.
 *
 * Usually (applyBatched) every identity is resolved before anything is written — conditions
 * locked in sorted order and matched, stable ids looked up — so all new resources go in with one
 * batched insert; a reference to a resource that already exists is not locked (it is never
 * written). When one entry's condition could find what another entry of the same message writes
 * (two orders with the same number), entries are written one after the other (applySequential).
 */
import { randomUUID } from 'node:crypto';
import type { Identifier, Reference, Resource } from 'fhir/r4.js';
import { FhirError, preconditionFailed } from '../fhir/outcome.js';
import { eachReference } from '../fhir/references.js';
import { findMatches, findMatchesMany, normalizeQuery } from '../interactions/matching.js';
import type { Writer, WriteOutcome } from '../interactions/writer.js';
import type { NewVersion, StoredVersion } from '../store/resource-store.js';
import { V2DataError } from './ack.js';
import type { MergePlan, Plan, PlanEntry, WriteIdentity } from './mapper.js';
import { ownOrderCondition, preferIdentifier } from './own-orders.js';

export interface WrittenResource {
  reference: string;
  versionId: number;
  outcome: WriteOutcome['kind'];
}

/** Entries ordered so that each comes after the entries it refers to. */
function writeOrder(entries: PlanEntry[]): PlanEntry[] {
  const byUrl = new Map(entries.map((e) => [e.fullUrl, e]));
  const order: PlanEntry[] = [];
  const state = new Map<PlanEntry, 'visiting' | 'done'>();
  const visit = (e: PlanEntry) => {
    const s = state.get(e);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`HL7 v2 mapping produced a reference cycle at ${e.name}`);
    state.set(e, 'visiting');
    eachReference(e.resource, (ref) => {
      const dep = byUrl.get(ref);
      if (dep) visit(dep);
      return undefined;
    });
    state.set(e, 'done');
    order.push(e);
  };
  entries.forEach(visit);
  return order;
}

async function writeEntry(w: Writer, identity: WriteIdentity, resource: Resource): Promise<WriteOutcome> {
  const checked = w.check(resource, resource.resourceType);
  switch (identity.kind) {
    case 'conditional':
      if (identity.mode === 'reference') return w.create(checked, { ifNoneExist: identity.query });
      if (identity.preserve) return updateKeeping(w, checked, identity.query, identity.preserve);
      return w.conditionalUpdate(checked, identity.query);
    case 'id':
      return w.update({ ...checked, id: identity.id }, identity.id);
    case 'create':
      return w.create(checked);
  }
}

/** A conditional update that keeps some elements of the stored resource the message does not give. */
async function updateKeeping(w: Writer, resource: Resource, query: string, preserve: string[]): Promise<WriteOutcome> {
  const matches = await w.lockAndMatch(resource.resourceType, query, 'conditional update');
  if (matches.length > 1) throw preconditionFailed(`The condition '${query}' matches ${matches.length} resources`);
  const match = matches[0];
  if (!match) return w.create(resource);
  const stored = JSON.parse(match.content!) as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...resource, id: match.id };
  for (const key of preserve) if (merged[key] === undefined && stored[key] !== undefined) merged[key] = stored[key];
  return w.update(merged as unknown as Resource, match.id);
}

export interface ApplyOptions {
  /** HL7V2_PLACER_SYSTEM: a number in it may be the id of an order sent without identifier (own-orders.ts). */
  ownPlacerSystem?: string;
}

export async function applyPlan(w: Writer, plan: Plan, options: ApplyOptions = {}): Promise<WrittenResource[]> {
  const order = writeOrder(plan.entries);
  const batched = canBatch(order) ? await applyBatched(w, order, options) : undefined;
  const { written, resolved } = batched ?? (await applySequential(w, order, options));
  for (const merge of plan.merges) written.push(...(await applyMerge(w, merge, resolved.get(merge.survivorUrl)!)));
  return written;
}

/**
 * Several messages' plans written as one (a batch of one connection's frames, inbound.ts): one
 * identity resolution and one insert for all of them. A reference several messages share (the
 * attending doctor) is resolved once, as if the messages came one after the other. When the
 * plans touch the same resources otherwise (the same patient twice), they are applied one after
 * the other instead, still in the caller's transaction. Plans with merges are not accepted.
 * Returns the written resources of each plan.
 */
export async function applyPlans(w: Writer, plans: Plan[], options: ApplyOptions = {}): Promise<WrittenResource[][]> {
  if (plans.some((p) => p.merges.length > 0)) throw new Error('applyPlans: plans with merges are applied one by one');
  const canonical = new Map<string, PlanEntry>();
  const alias = new Map<string, string>();
  const sharedBy = new Map<PlanEntry, PlanEntry>();
  const entries: PlanEntry[] = [];
  const owner = new Map<PlanEntry, number>();
  plans.forEach((plan, i) => {
    for (const e of plan.entries) {
      if (e.identity.kind === 'conditional' && e.identity.mode === 'reference') {
        const key = `${e.resource.resourceType}?${normalizeQuery(e.identity.query)}`;
        const first = canonical.get(key);
        if (first) {
          alias.set(e.fullUrl, first.fullUrl);
          sharedBy.set(e, first);
          continue;
        }
        canonical.set(key, e);
      }
      owner.set(e, i);
      entries.push(e);
    }
  });
  // Later messages' references to a shared entry point at its first occurrence (a copy: the plans stay as mapped).
  const combinedOf = new Map<PlanEntry, PlanEntry>();
  const combined = entries.map((e) => {
    let changed = false;
    const resource = alias.size === 0 ? e.resource : structuredClone(e.resource);
    if (alias.size > 0) {
      eachReference(resource, (ref) => {
        const to = alias.get(ref);
        if (to) changed = true;
        return to;
      });
    }
    const entry = changed ? { ...e, resource } : e;
    combinedOf.set(e, entry);
    owner.set(entry, owner.get(e)!);
    return entry;
  });
  const order = writeOrder(combined);
  if (!canBatch(order)) {
    const out: WrittenResource[][] = [];
    for (const plan of plans) out.push(await applyPlan(w, plan, options));
    return out;
  }
  const { written } = await applyBatched(w, order, options);
  const byEntry = new Map<PlanEntry, WrittenResource>();
  const out: WrittenResource[][] = plans.map(() => []);
  order.forEach((e, i) => {
    byEntry.set(e, written[i]!);
    out[owner.get(e)!]!.push(written[i]!);
  });
  // A message whose shared reference an earlier message of the batch resolved: that resource, found.
  plans.forEach((plan, i) => {
    for (const e of plan.entries) {
      const first = sharedBy.get(e);
      const resolved = first && byEntry.get(combinedOf.get(first)!);
      if (resolved) out[i]!.push({ ...resolved, outcome: 'existing' });
    }
  });
  return out;
}

/** A Writer error while writing an entry as the HL7 error of the entry's segment. */
function entryError(e: PlanEntry, error: unknown): unknown {
  if (!(error instanceof FhirError)) return error;
  // 400: the mapped resource is invalid; 412: its identifier matches several resources.
  const code = error.status === 412 ? '205' : error.status === 400 ? '102' : '207';
  return new V2DataError({ code, text: `${e.origin.segment} → ${e.resource.resourceType}: ${error.message}`, location: e.origin });
}

/** One entry after the other, each through the Writer's own interaction (the general path). */
async function applySequential(w: Writer, order: PlanEntry[], options: ApplyOptions): Promise<{ written: WrittenResource[]; resolved: Map<string, string> }> {
  const resolved = new Map<string, string>();
  const written: WrittenResource[] = [];
  for (const e of order) {
    // A copy: the transaction may be retried (deadlock), and the plan must stay as mapped.
    const resource = structuredClone(e.resource);
    eachReference(resource, (ref) => (ref.startsWith('urn:uuid:') ? resolved.get(ref) : undefined));
    let out: WriteOutcome;
    try {
      out = await writeEntry(w, await ownOrderIdentity(w, e, options), resource);
    } catch (error) {
      throw entryError(e, error);
    }
    const v = out.version!;
    resolved.set(e.fullUrl, `${v.resourceType}/${v.id}`);
    written.push({ reference: `${v.resourceType}/${v.id}`, versionId: v.versionId, outcome: out.kind });
  }
  return { written, resolved };
}

/**
 * The sequential path's fallback for an order number of our own (own-orders.ts): when the
 * identifier finds nothing and the number is the id of one order, the entry is written as a
 * condition on that id. Costs one statement, for such entries only (the batched path pays none).
 */
async function ownOrderIdentity(w: Writer, e: PlanEntry, options: ApplyOptions): Promise<WriteIdentity> {
  const identity = e.identity;
  if (identity.kind !== 'conditional') return identity;
  const fallback = ownOrderCondition(e.resource.resourceType, identity.query, options.ownPlacerSystem);
  if (!fallback) return identity;
  const [matches] = await matchAll(w, [{ e, resourceType: e.resource.resourceType, query: identity.query, fallback }]);
  if (matches!.length > 1) throw entryError(e, preconditionFailed(`The condition '${identity.query}' matches ${matches!.length} resources`));
  // The one it finds, by identifier or id, is then the one the Writer finds by id.
  return matches!.length === 1 ? { ...identity, query: `_id=${encodeURIComponent(matches![0]!.id)}` } : identity;
}

const tokenEscape = (s: string) => s.replace(/[\\,|$]/g, (c) => `\\${c}`);
const identifierTokens = (resource: Resource) =>
  ((resource as { identifier?: Identifier[] }).identifier ?? []).map((i) => `${resource.resourceType}:${tokenEscape(i.system ?? '')}|${tokenEscape(i.value ?? '')}`);

/**
 * Whether the entries can be resolved all at once, before anything is written: no entry's
 * condition (or id) may find a resource another entry of the same message writes. Sequentially, a
 * later condition would see the earlier entry's new resource; resolved up front it would not.
 */
function canBatch(order: PlanEntry[]): boolean {
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
async function applyBatched(w: Writer, order: PlanEntry[], options: ApplyOptions): Promise<{ written: WrittenResource[]; resolved: Map<string, string> }> {
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
    let resource = structuredClone(e.resource);
    eachReference(resource, (ref) => (ref.startsWith('urn:uuid:') ? resolved.get(ref) : undefined));
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

/** An entry's condition, with the `_id` condition that also finds an order of our own (own-orders.ts). */
interface Condition {
  e: PlanEntry;
  resourceType: string;
  query: string;
  fallback?: string;
}

/**
 * Match several conditions in one statement (fallbacks included, as more parts of the same
 * statement): each condition's matches, by identifier when it found any, else by the fallback.
 * On an error, find the entry it belongs to.
 */
async function matchAll(w: Writer, conditions: Condition[]): Promise<StoredVersion[][]> {
  const store = w.ctx.store;
  const withFallback = conditions.filter((c) => c.fallback);
  const all = [...conditions, ...withFallback.map((c) => ({ e: c.e, resourceType: c.resourceType, query: c.fallback! }))];
  let found: StoredVersion[][];
  try {
    found = await findMatchesMany(w.tx, store.schema, all, 2, w.registry);
  } catch (error) {
    if (!(error instanceof FhirError)) throw error;
    // Rare (a condition the engine refuses): run them one by one to name the entry at fault.
    for (const c of all) {
      try {
        await findMatches(w.tx, store.schema, c.resourceType, c.query, 2, w.registry);
      } catch (each) {
        throw entryError(c.e, each);
      }
    }
    throw error;
  }
  const byId = new Map(withFallback.map((c, i) => [c, found[conditions.length + i]!]));
  return conditions.map((c, i) => preferIdentifier(found[i]!, byId.get(c)));
}

/**
 * A40 merge: the prior patient (found by the MRG-1 identifier) is marked inactive and
 * replaced-by the survivor; the survivor gets a replaces link; the resources of the listed types
 * that refer to the prior patient (found through the reference index) are moved to the survivor.
 */
async function applyMerge(w: Writer, merge: MergePlan, survivorRef: string): Promise<WrittenResource[]> {
  const store = w.ctx.store;
  const prior = await findMatches(w.tx, store.schema, 'Patient', merge.priorQuery, 2, w.registry);
  if (prior.length === 0) throw new V2DataError({ code: '204', text: 'MRG-1: no patient has the prior identifier', location: merge.origin });
  if (prior.length > 1) throw new V2DataError({ code: '205', text: 'MRG-1: several patients have the prior identifier', location: merge.origin });
  const priorRef = `Patient/${prior[0]!.id}`;
  if (priorRef === survivorRef) throw new V2DataError({ code: '205', text: 'MRG-1 names the surviving patient itself', location: merge.origin });
  const written: WrittenResource[] = [];
  const record = (out: WriteOutcome) => {
    const v = out.version!;
    written.push({ reference: `${v.resourceType}/${v.id}`, versionId: v.versionId, outcome: out.kind });
  };

  const old = JSON.parse(prior[0]!.content!) as Resource & { active?: boolean; link?: Array<{ other: Reference; type: string }> };
  const links = (old.link ?? []).filter((l) => l.type !== 'replaced-by');
  record(await w.update({ ...old, active: false, link: [...links, { other: { reference: survivorRef }, type: 'replaced-by' }] } as Resource, old.id!));

  const survivorId = survivorRef.slice('Patient/'.length);
  const current = await store.current(w.tx, 'Patient', survivorId, true);
  const survivor = JSON.parse(current!.content!) as Resource & { link?: Array<{ other: Reference; type: string }> };
  const survivorLinks = (survivor.link ?? []).filter((l) => l.other.reference !== priorRef);
  record(await w.update({ ...survivor, link: [...survivorLinks, { other: { reference: priorRef }, type: 'replaces' }] } as Resource, survivorId));

  for (const [type, param] of merge.references) {
    const seen = new Set<string>();
    for (;;) {
      const batch = (await findMatches(w.tx, store.schema, type, `${param}=${encodeURIComponent(priorRef)}`, 100, w.registry)).filter((m) => !seen.has(m.id));
      if (batch.length === 0) break;
      for (const match of batch) {
        seen.add(match.id);
        const resource = JSON.parse(match.content!) as Resource;
        eachReference(resource, (ref) => (ref === priorRef || ref.endsWith(`/${priorRef}`) ? survivorRef : undefined));
        record(await w.update(w.check(resource, type), match.id));
      }
    }
  }
  return written;
}
