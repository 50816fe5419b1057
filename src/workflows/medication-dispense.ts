/**
 * Dispense news back to the prescription: a change consumer on MedicationDispense (written by REST
 * or by an RDS^O13 from the pharmacy, mappings/messages.json) completes the authorizing
 * MedicationRequest once it is fully dispensed:
 * - with dispenseRequest.quantity: when the quantities of its completed dispenses add up to
 *   quantity × (1 + numberOfRepeatsAllowed) (a dispense in another unit than the prescribed one is
 *   not counted);
 * - without a quantity: on the first completed dispense.
 * Only an active request is completed; on-hold, stopped … are left alone, and so is one of status
 * unknown (made from a dispense of an order not seen yet): when the order arrives (RDE^O11, a
 * conditional update on its number) it must still be able to become active.
 * Idempotent: it recomputes the sum from the stored dispenses each time, under the request's row lock.
 */
import type { MedicationDispense, MedicationRequest, Quantity } from 'fhir/r4.js';
import { findMatches } from '../interactions/matching.js';
import { Writer } from '../interactions/writer.js';
import type { JobInfo } from '../jobs/queue.js';
import type { Tenants } from '../store/tenants.js';
import type { ChangeConsumer, ChangeJob } from '../subscriptions/consumers.js';
import { loadForUpdate, localReference } from './medication-params.js';

const sameUnit = (a: Quantity, b: Quantity) => (a.code && b.code ? a.code === b.code && (a.system ?? '') === (b.system ?? '') : (a.unit ?? '') === (b.unit ?? '') || !a.unit || !b.unit);

/** Whether these completed dispenses fulfil the request (see the module comment). */
export function isFullyDispensed(request: MedicationRequest, dispenses: MedicationDispense[]): boolean {
  const completed = dispenses.filter((d) => d.status === 'completed');
  const prescribed = request.dispenseRequest?.quantity;
  if (prescribed?.value === undefined) return completed.length > 0;
  const total = prescribed.value * (1 + (request.dispenseRequest?.numberOfRepeatsAllowed ?? 0));
  const dispensed = completed.reduce((sum, d) => sum + (d.quantity?.value !== undefined && sameUnit(prescribed, d.quantity) ? d.quantity.value : 0), 0);
  return dispensed >= total - 1e-9;
}

export class DispenseCompletionConsumer implements ChangeConsumer {
  readonly queue = 'workflow-medication-dispense';

  constructor(private readonly tenants: Tenants) {}

  async watchedTypes(): Promise<ReadonlySet<string>> {
    return new Set(['MedicationDispense']);
  }

  readonly handle = async (job: JobInfo<ChangeJob>): Promise<void> => {
    const e = job.data;
    if (e.action === 'delete') return;
    const store = await this.tenants.store(e.tenant);
    const current = await store.current(store.db, 'MedicationDispense', e.id);
    if (!current || current.deleted || !current.content) return;
    const dispense = JSON.parse(current.content) as MedicationDispense;
    if (dispense.status !== 'completed') return;
    for (const auth of dispense.authorizingPrescription ?? []) {
      const ref = localReference(auth.reference, 'MedicationRequest');
      if (!ref) continue;
      await store.db.transaction(async (tx) => {
        const w = new Writer({ store, baseUrl: '' }, tx);
        let request: MedicationRequest;
        try {
          request = (await loadForUpdate<MedicationRequest>(w, ref)).resource;
        } catch {
          return; // the request is unknown or deleted: nothing to complete
        }
        if (request.status !== 'active') return;
        const all = await findMatches(tx, store.schema, 'MedicationDispense', `prescription=${encodeURIComponent(ref)}&status=completed`, 10_000, w.registry);
        if (!isFullyDispensed(request, all.map((m) => JSON.parse(m.content!) as MedicationDispense))) return;
        await w.update({ ...request, status: 'completed' } as MedicationRequest, request.id!);
      });
    }
  };
}
