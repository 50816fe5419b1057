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
 * The batched path is apply-batched.ts, A40 merges merge.ts.
 */
import type { Resource } from 'fhir/r4.js';
import { preconditionFailed } from '../fhir/outcome.js';
import { copyWithReferences, eachReference } from '../fhir/references.js';
import { normalizeQuery } from '../interactions/matching.js';
import type { Writer, WriteOutcome } from '../interactions/writer.js';
import { applyBatched, canBatch } from './apply-batched.js';
import { entryError, matchAll, type ApplyOptions, type WrittenResource } from './apply-common.js';
import type { Plan, PlanEntry, WriteIdentity } from './mapper.js';
import { applyMerge } from './merge.js';
import { ownOrderCondition } from './own-orders.js';

export type { ApplyOptions, WrittenResource } from './apply-common.js';

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
  // Later messages' references to a shared entry point at its first occurrence (in a copy, made
  // only for entries that hold such a reference: the plans stay as mapped).
  const combinedOf = new Map<PlanEntry, PlanEntry>();
  const combined = entries.map((e) => {
    let aliased = false;
    if (alias.size > 0) {
      eachReference(e.resource, (ref) => {
        if (alias.has(ref)) aliased = true;
        return undefined;
      });
    }
    const entry = aliased ? { ...e, resource: copyWithReferences(e.resource, (ref) => alias.get(ref)) } : e;
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

/** One entry after the other, each through the Writer's own interaction (the general path). */
async function applySequential(w: Writer, order: PlanEntry[], options: ApplyOptions): Promise<{ written: WrittenResource[]; resolved: Map<string, string> }> {
  const resolved = new Map<string, string>();
  const written: WrittenResource[] = [];
  for (const e of order) {
    // A copy: the transaction may be retried (deadlock), and the plan must stay as mapped.
    const resource = copyWithReferences(e.resource, (ref) => (ref.startsWith('urn:uuid:') ? resolved.get(ref) : undefined));
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
