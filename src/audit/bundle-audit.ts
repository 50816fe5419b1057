/**
 * Audit of Bundle entries. A transaction is ONE request: its AuditEvent (written in its database
 * transaction by Writer.recordRequest) names every version written and every resource its GET
 * entries read. A batch entry is an independent interaction in its own database transaction, so
 * each gets its own AuditEvent (subtype batch): writes inside the entry's transaction, reads and
 * failures after it.
 */
import type { BundleEntryText } from '../interactions/bundle-json.js';
import type { InteractionContext } from '../interactions/context.js';
import type { EntryTarget } from '../interactions/entry-url.js';
import { recordAudit, recordFailure } from './record.js';
import type { AuditEntity } from './types.js';

/** The resource an entry's url names, if it names one. */
export function entryEntities(target: EntryTarget): AuditEntity[] {
  return target.resourceType && target.id ? [{ resourceType: target.resourceType, id: target.id, versionId: target.versionId }] : [];
}

/** A GET entry of a batch: audited after it ran, with the status its entry reports. */
export async function auditBatchRead(ctx: InteractionContext, target: EntryTarget, entry: BundleEntryText): Promise<void> {
  if (!ctx.audit) return;
  const status = Number.parseInt(entry.response?.status ?? '200', 10);
  await recordAudit(ctx, status, entryEntities(target), status >= 400 ? entry.response?.status : undefined);
}

/** A failed batch entry, after its transaction rolled back. */
export async function auditBatchFailure(ctx: InteractionContext, index: number, error: unknown): Promise<void> {
  if (!ctx.audit) return;
  await recordFailure({ ...ctx, audit: { ...ctx.audit, path: `${ctx.audit.path} Bundle.entry[${index}]` } }, error);
}
