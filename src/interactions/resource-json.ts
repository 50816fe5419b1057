/** Turning resources into the stored JSON text and back. */
import type { Resource } from 'fhir/r4.js';
import { badRequest } from '../fhir/outcome.js';

/** The stored form: resourceType, id and meta first (readable), meta.versionId/lastUpdated set by the server. */
export function stamp(resource: Resource, id: string, versionId: number, lastUpdated: string): Resource {
  const { resourceType, id: _ignored, meta, ...rest } = resource;
  return {
    resourceType,
    id,
    meta: { ...meta, versionId: String(versionId), lastUpdated },
    ...rest,
  } as Resource;
}

export function parseJson(text: string, what = 'request body'): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest(`The ${what} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Stored text → resource object (stored text is always valid JSON). */
export function fromStored(content: string): Resource {
  return JSON.parse(content) as Resource;
}

/** A later lastUpdated than the previous version's, even if clocks of two processes disagree. */
export function nextTimestamp(now: string, previous?: string): string {
  if (!previous || previous < now) return now;
  return new Date(Date.parse(previous) + 1).toISOString();
}
