/** patch with JSON Patch or FHIRPath Patch, and conditional patch: http.html#patch. */
import type { Resource } from 'fhir/r4.js';
import { notFound, preconditionFailed, unprocessable } from '../fhir/outcome.js';
import type { InteractionContext, InteractionResult } from './context.js';
import { applyFhirPathPatch, applyJsonPatch } from './patch-apply.js';
import { fromStored } from './resource-json.js';
import { writeInTransaction } from './write-result.js';
import type { Writer } from './writer.js';

export type PatchFormat = 'json-patch' | 'fhirpath-patch';

export interface PatchTarget {
  id?: string;
  /** Conditional patch: a search query instead of an id. */
  query?: string;
}

export function patchResource(
  ctx: InteractionContext,
  resourceType: string,
  target: PatchTarget,
  format: PatchFormat,
  patch: unknown,
  ifMatch?: number,
): Promise<InteractionResult> {
  return writeInTransaction(ctx, (w) => applyPatch(w, resourceType, target, format, patch, ifMatch));
}

/** Shared with transaction entries: resolve the target, apply, validate, write a new version. */
export async function applyPatch(w: Writer, resourceType: string, target: PatchTarget, format: PatchFormat, patch: unknown, ifMatch?: number) {
  let id = target.id;
  if (id === undefined) {
    const matches = await w.lockAndMatch(resourceType, target.query ?? '', 'conditional patch');
    if (matches.length > 1) throw preconditionFailed(`The condition '${target.query}' matches ${matches.length} resources`);
    if (!matches[0]) throw notFound(`No ${resourceType} matches '${target.query}'`);
    id = matches[0].id;
  }
  const current = await w.currentForPatch(resourceType, id);
  const before = fromStored(current.content);
  const after: Resource = format === 'json-patch' ? applyJsonPatch(before, patch) : applyFhirPathPatch(before, patch);
  if (after.resourceType !== resourceType || after.id !== id) throw unprocessable('A patch may not change the resource type or id');
  return w.update(w.check(after, resourceType), id, { ifMatch });
}
