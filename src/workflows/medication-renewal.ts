/**
 * Prescription renewals. A patient (or a pharmacy) asks with a Task:
 *   { code: RENEWAL_REQUEST, focus: MedicationRequest/x, for: Patient/p, status: requested, intent: order }
 * and the prescriber answers with one operation, each ONE database transaction:
 * - Task/[id]/$approve-renewal [practitioner=Practitioner/y]: a new active MedicationRequest, a copy
 *   of the prior one (medication, dosage, dispense request) with priorPrescription → the prior and
 *   authoredOn now; the Task becomes completed with output → the new request. The prior request
 *   is left as it is (usually already completed; stop it separately if it is still running).
 * - Task/[id]/$reject-renewal reason=…: the Task becomes rejected with statusReason.text = reason.
 * Both answer the updated Task. A Task that is not an open renewal request → 422.
 */
import { randomUUID } from 'node:crypto';
import type { MedicationRequest, Task } from 'fhir/r4.js';
import type { InteractionContext, InteractionResult } from '../interactions/context.js';
import { writeResult } from '../interactions/write-result.js';
import { Writer } from '../interactions/writer.js';
import { businessRule, loadForUpdate, localReference, OperationParams, type OperationInput } from './medication-params.js';
import { withPlacerNumber } from './medication-templates.js';

export const TASK_CODE_SYSTEM = 'https://carebridge.dev/fhir/CodeSystem/task-code';
export const RENEWAL_REQUEST = { system: TASK_CODE_SYSTEM, code: 'renewal-request', display: 'Prescription renewal request' };
/** Task statuses in which a request still waits for an answer. */
export const OPEN_TASK_STATUSES: ReadonlySet<Task['status']> = new Set(['draft', 'requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold']);

const isRenewal = (task: Task) => task.code?.coding?.some((c) => c.code === RENEWAL_REQUEST.code) ?? false;

async function openRenewal(w: Writer, id: string): Promise<{ task: Task; prior: MedicationRequest; priorRef: string }> {
  const { resource: task } = await loadForUpdate<Task>(w, `Task/${id}`);
  if (!isRenewal(task)) throw businessRule(`Task/${id} is not a renewal request (code ${RENEWAL_REQUEST.code})`, ['Task.code']);
  if (!OPEN_TASK_STATUSES.has(task.status)) throw businessRule(`Task/${id} is already ${task.status}`, ['Task.status']);
  const priorRef = localReference(task.focus?.reference, 'MedicationRequest');
  if (!priorRef) throw businessRule(`Task/${id} has no focus MedicationRequest to renew`, ['Task.focus']);
  const { resource: prior } = await loadForUpdate<MedicationRequest>(w, priorRef);
  return { task, prior, priorRef };
}

export function approveRenewal(ctx: InteractionContext, id: string, input: OperationInput): Promise<InteractionResult> {
  const params = new OperationParams(input);
  const practitioner = params.reference('practitioner', ['Practitioner', 'PractitionerRole']);
  return ctx.store.db.transaction(async (tx) => {
    const w = new Writer(ctx, tx);
    const { task, prior, priorRef } = await openRenewal(w, id);
    if (prior.status === 'entered-in-error' || prior.status === 'draft') {
      throw businessRule(`${priorRef} is ${prior.status}; only a prescription that was issued can be renewed`, ['Task.focus']);
    }
    const { id: _id, meta: _meta, identifier: _identifier, text: _text, status: _status, statusReason: _reason, ...copy } = prior;
    const renewed: MedicationRequest = {
      ...copy,
      status: 'active',
      authoredOn: w.now,
      priorPrescription: { reference: priorRef },
      ...(practitioner ? { requester: { reference: practitioner } } : {}),
    };
    const newId = randomUUID();
    const created = await w.create(w.check(withPlacerNumber(renewed, newId), 'MedicationRequest'), { id: newId });
    const completed: Task = {
      ...task,
      status: 'completed',
      lastModified: w.now,
      ...(practitioner ? { owner: { reference: practitioner } } : {}),
      output: [...(task.output ?? []), { type: { text: 'Renewed prescription' }, valueReference: { reference: `MedicationRequest/${created.version!.id}` } }],
    };
    return writeResult(await w.update(w.check(completed, 'Task'), id));
  });
}

export function rejectRenewal(ctx: InteractionContext, id: string, input: OperationInput): Promise<InteractionResult> {
  const params = new OperationParams(input);
  const reason = params.required('reason');
  const practitioner = params.reference('practitioner', ['Practitioner', 'PractitionerRole']);
  return ctx.store.db.transaction(async (tx) => {
    const w = new Writer(ctx, tx);
    const { task } = await openRenewal(w, id);
    const rejected: Task = {
      ...task,
      status: 'rejected',
      statusReason: { text: reason },
      lastModified: w.now,
      ...(practitioner ? { owner: { reference: practitioner } } : {}),
    };
    return writeResult(await w.update(w.check(rejected, 'Task'), id));
  });
}
