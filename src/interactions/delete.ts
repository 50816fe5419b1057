/** delete and conditional delete: http.html#delete, #cdelete. Deletion is a new version. */
import type { InteractionContext, InteractionResult } from './context.js';
import { writeInTransaction } from './write-result.js';

export function deleteResource(ctx: InteractionContext, resourceType: string, id: string, ifMatch?: number): Promise<InteractionResult> {
  return writeInTransaction(ctx, (w) => w.delete(resourceType, id, { ifMatch }));
}

export function conditionalDelete(ctx: InteractionContext, resourceType: string, query: string): Promise<InteractionResult> {
  return writeInTransaction(ctx, (w) => w.conditionalDelete(resourceType, query));
}
