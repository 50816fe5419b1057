/** create and conditional create (If-None-Exist): http.html#create, #ccreate. */
import type { InteractionContext, InteractionResult } from './context.js';
import { writeInTransaction } from './write-result.js';

export function createResource(ctx: InteractionContext, resourceType: string, body: unknown, ifNoneExist?: string): Promise<InteractionResult> {
  return writeInTransaction(ctx, (w) => w.create(w.check(body, resourceType), { ifNoneExist }));
}
