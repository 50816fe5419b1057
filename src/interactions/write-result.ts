/** Rendering a write's outcome as an interaction result, shared by REST and Bundle entries. */
import type { InteractionContext, InteractionResult } from './context.js';
import type { WriteOutcome } from './writer.js';
import { Writer } from './writer.js';
import { unwrittenEntities } from '../audit/write-audit.js';

export function writeResult(outcome: WriteOutcome): InteractionResult {
  switch (outcome.kind) {
    case 'created':
      return { status: 201, body: outcome.resource, version: outcome.version, created: true };
    case 'updated':
      return { status: 200, body: outcome.resource, version: outcome.version };
    case 'existing':
      return { status: 200, body: outcome.version?.content ?? undefined, version: outcome.version };
    case 'deleted':
    case 'unchanged':
      return { status: 204, version: outcome.kind === 'deleted' ? outcome.version : undefined };
  }
}

/** Run one write interaction in its own database transaction, with its audit records. */
export function writeInTransaction(ctx: InteractionContext, fn: (w: Writer) => Promise<WriteOutcome>): Promise<InteractionResult> {
  return ctx.store.db.transaction(async (tx) => {
    const w = new Writer(ctx, tx);
    const outcome = await fn(w);
    // Provenance and AuditEvent commit with the write, or not at all (src/audit/write-audit.ts).
    await w.recordRequest(unwrittenEntities(outcome));
    return writeResult(outcome);
  });
}
