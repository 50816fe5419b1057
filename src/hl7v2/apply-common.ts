/**
 * What the HL7 v2 write paths share (apply.ts one entry after the other, apply-batched.ts all
 * identities at once): the result type, options, the mapping of a write error to the HL7 error of
 * its segment, and matching identity conditions in one statement.
 */
import { FhirError } from '../fhir/outcome.js';
import { findMatches, findMatchesMany } from '../interactions/matching.js';
import type { Writer, WriteOutcome } from '../interactions/writer.js';
import type { StoredVersion } from '../store/resource-store.js';
import { V2DataError } from './ack.js';
import type { PlanEntry } from './mapper.js';
import { preferIdentifier } from './own-orders.js';

export interface WrittenResource {
  reference: string;
  versionId: number;
  outcome: WriteOutcome['kind'];
}

export interface ApplyOptions {
  /** HL7V2_PLACER_SYSTEM: a number in it may be the id of an order sent without identifier (own-orders.ts). */
  ownPlacerSystem?: string;
}

/** A Writer error while writing an entry as the HL7 error of the entry's segment. */
export function entryError(e: PlanEntry, error: unknown): unknown {
  if (!(error instanceof FhirError)) return error;
  // 400: the mapped resource is invalid; 412: its identifier matches several resources.
  const code = error.status === 412 ? '205' : error.status === 400 ? '102' : '207';
  return new V2DataError({ code, text: `${e.origin.segment} → ${e.resource.resourceType}: ${error.message}`, location: e.origin });
}

/** An entry's condition, with the `_id` condition that also finds an order of our own (own-orders.ts). */
export interface Condition {
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
export async function matchAll(w: Writer, conditions: Condition[]): Promise<StoredVersion[][]> {
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
