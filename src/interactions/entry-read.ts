/** GET entries of a batch or transaction: read, vread, history or search by their url. */
import { badRequest } from '../fhir/outcome.js';
import type { InteractionContext, InteractionResult } from './context.js';
import type { EntryTarget } from './entry-url.js';
import { history } from './history.js';
import { readResource, vreadResource } from './read.js';
import { searchResources } from './search.js';

export function executeRead(ctx: InteractionContext, t: EntryTarget): Promise<InteractionResult> {
  const params = new URLSearchParams(t.query ?? '');
  if (t.operation) throw badRequest(`Operations are not supported in Bundle entries (${t.operation})`);
  if (t.history) return history(ctx, { resourceType: t.resourceType, id: t.id }, params);
  if (t.resourceType && t.id && t.versionId) return vreadResource(ctx, t.resourceType, t.id, t.versionId);
  if (t.resourceType && t.id) return readResource(ctx, t.resourceType, t.id);
  return searchResources(ctx, t.resourceType, [...params], { strict: false });
}
