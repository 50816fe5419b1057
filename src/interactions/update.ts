/** update (with update-as-create) and conditional update: http.html#update, #cond-update. */
import { badRequest } from '../fhir/outcome.js';
import type { InteractionContext, InteractionResult } from './context.js';
import { writeInTransaction } from './write-result.js';

export function updateResource(ctx: InteractionContext, resourceType: string, id: string, body: unknown, ifMatch?: number): Promise<InteractionResult> {
  return writeInTransaction(ctx, (w) => {
    const resource = w.check(body, resourceType);
    if (resource.id === undefined) throw badRequest('The resource must have an id for update', [`${resourceType}.id`]);
    if (resource.id !== id) throw badRequest(`The resource id '${resource.id}' does not match the URL id '${id}'`, [`${resourceType}.id`]);
    return w.update(resource, id, { ifMatch });
  });
}

export function conditionalUpdate(ctx: InteractionContext, resourceType: string, query: string, body: unknown, ifMatch?: number): Promise<InteractionResult> {
  return writeInTransaction(ctx, (w) => w.conditionalUpdate(w.check(body, resourceType), query, { ifMatch }));
}
