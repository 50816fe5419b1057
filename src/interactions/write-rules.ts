/**
 * Write rules: resource-type-specific business rules (a Slot taken by a booked Appointment, a
 * MedicationRequest status transition) that must hold however a write arrives — REST, transaction,
 * batch, HL7 v2, workflows — so they run inside the Writer, in the write's database transaction.
 *
 * A rule may refuse the write (throw a FhirError: 409, 422 …) or make more writes through the same
 * Writer (they commit or roll back together with the write). Rules are registered once at start
 * (workflows register theirs); types without rules cost one Map lookup per write.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Resource } from 'fhir/r4.js';
import type { Writer } from './writer.js';

export interface WriteChange {
  action: 'create' | 'update' | 'delete';
  resourceType: string;
  id: string;
  /** The version being written (already stamped with id and meta); absent for a delete. */
  resource?: Resource;
  /** The current version before this write; absent for a create (or re-create after delete). */
  previous?: Resource;
}

export interface WriteRule {
  /** A short name for logs and errors. */
  readonly name: string;
  readonly types: readonly string[];
  /** Runs before the version is stored, in the write's transaction. */
  apply(writer: Writer, change: WriteChange): Promise<void>;
  /**
   * Only for the writes the caller asked for, not for those other rules make in consequence (the
   * access policy, src/auth/policy.ts: a patient booking an Appointment may not write Slots, but
   * the booking rule marks the Slot busy on the server's behalf).
   */
  readonly requestedOnly?: boolean;
}

/** Set while rules run: writes made then are consequences, not requests. */
const consequence = new AsyncLocalStorage<true>();

const rulesByType = new Map<string, WriteRule[]>();

/** Register a rule (idempotent per rule object). */
export function registerWriteRule(rule: WriteRule): void {
  for (const type of rule.types) {
    const list = rulesByType.get(type) ?? [];
    if (!list.includes(rule)) list.push(rule);
    rulesByType.set(type, list);
  }
}

export function hasWriteRules(resourceType: string): boolean {
  return rulesByType.has(resourceType);
}

export async function applyWriteRules(writer: Writer, change: WriteChange): Promise<void> {
  const derived = consequence.getStore() === true;
  const rules = (rulesByType.get(change.resourceType) ?? []).filter((rule) => !(derived && rule.requestedOnly));
  await consequence.run(true, async () => {
    for (const rule of rules) await rule.apply(writer, change);
  });
}
