/** $validate on type and instance (resource-operation-validate.html): 200 with the issues found. */
import type { Parameters, Resource } from 'fhir/r4.js';
import { badRequest, informational, outcome } from '../fhir/outcome.js';
import { validateResource } from '../fhir/validator.js';
import type { InteractionContext, InteractionResult } from './context.js';
import { readClient } from './context.js';

export async function validateOperation(ctx: InteractionContext, resourceType: string, body: unknown, id?: string): Promise<InteractionResult> {
  let resource: unknown = body;
  let mode: string | undefined;
  if ((body as Resource)?.resourceType === 'Parameters' && resourceType !== 'Parameters') {
    const params = (body as Parameters).parameter ?? [];
    resource = params.find((p) => p.name === 'resource')?.resource;
    mode = params.find((p) => p.name === 'mode')?.valueCode;
    if (resource === undefined && mode !== 'delete') throw badRequest("$validate Parameters need a 'resource' parameter");
  }
  if (mode === 'delete') {
    if (!id) throw badRequest('$validate mode=delete needs a resource id in the url');
    const current = await ctx.store.current(readClient(ctx), resourceType, id);
    return { status: 200, body: current && !current.deleted ? informational('The resource can be deleted') : outcome([{ severity: 'error', code: 'not-found', diagnostics: `${resourceType}/${id} is not known` }]) };
  }
  const issues = validateResource(resource, resourceType);
  if (id && (resource as Resource | undefined)?.id !== id) {
    issues.push({ severity: 'error', code: 'invalid', diagnostics: `The resource id must be '${id}' to update ${resourceType}/${id}`, expression: [`${resourceType}.id`] });
  }
  return { status: 200, body: issues.length ? outcome(issues) : informational('No issues found') };
}
