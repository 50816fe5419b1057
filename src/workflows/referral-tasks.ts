/**
 * Answers to an order Task (lab-orders.ts), mainly the receiving practitioner's to a referral:
 * - Task/[id]/$accept → status accepted (from requested or received);
 * - Task/[id]/$reject reason=… → status rejected with statusReason.text (from requested,
 *   received, accepted or ready).
 * Each is one transaction and answers the updated Task; any other starting status → 422.
 */
import type { Task } from 'fhir/r4.js';
import type { InteractionContext, InteractionResult } from '../interactions/context.js';
import { writeResult } from '../interactions/write-result.js';
import { Writer } from '../interactions/writer.js';
import { businessRule, loadForUpdate, OperationParams, type OperationInput } from './medication-params.js';

const FROM: Record<'accepted' | 'rejected', ReadonlySet<Task['status']>> = {
  accepted: new Set(['requested', 'received']),
  rejected: new Set(['requested', 'received', 'accepted', 'ready']),
};

function answerTask(ctx: InteractionContext, id: string, to: 'accepted' | 'rejected', reason?: string): Promise<InteractionResult> {
  return ctx.store.db.transaction(async (tx) => {
    const w = new Writer(ctx, tx);
    const { resource: task } = await loadForUpdate<Task>(w, `Task/${id}`);
    if (!FROM[to].has(task.status)) throw businessRule(`Task/${id} is ${task.status}; it can become ${to} only from ${[...FROM[to]].join(', ')}`, ['Task.status']);
    const next: Task = { ...task, status: to, lastModified: w.now, ...(reason ? { statusReason: { text: reason } } : {}) };
    return writeResult(await w.update(w.check(next, 'Task'), id));
  });
}

export function acceptTask(ctx: InteractionContext, id: string, input: OperationInput): Promise<InteractionResult> {
  new OperationParams(input); // checks the body's shape
  return answerTask(ctx, id, 'accepted');
}

export function rejectTask(ctx: InteractionContext, id: string, input: OperationInput): Promise<InteractionResult> {
  return answerTask(ctx, id, 'rejected', new OperationParams(input).required('reason'));
}
