/** Parsing the relative URL of a Bundle entry's request (bundle.html#transaction). */
import { isResourceType } from '../fhir/definitions.js';
import { badRequest, notFound } from '../fhir/outcome.js';

export interface EntryTarget {
  resourceType?: string;
  id?: string;
  versionId?: string;
  history?: boolean;
  /** Search or condition query text, without the '?'. */
  query?: string;
  operation?: string;
}

export function parseEntryUrl(url: string, baseUrl: string): EntryTarget {
  let rel = url.startsWith(`${baseUrl}/`) ? url.slice(baseUrl.length + 1) : url;
  if (/^[a-z]+:/i.test(rel)) throw badRequest(`The request url '${url}' is not relative to this server`);
  rel = rel.replace(/^\//, '');
  const q = rel.indexOf('?');
  const path = q >= 0 ? rel.slice(0, q) : rel;
  const query = q >= 0 ? rel.slice(q + 1) : undefined;
  const parts = path.split('/').filter((p) => p.length > 0);
  if (parts.length === 0) return { query };
  const [type, second, third, fourth] = parts;
  if (type!.startsWith('$')) return { operation: type, query };
  if (!isResourceType(type!)) throw notFound(`Unknown resource type '${type}'`);
  const target: EntryTarget = { resourceType: type, query };
  if (second === undefined) return target;
  if (second.startsWith('$')) return { ...target, operation: second };
  if (second === '_history') return { ...target, history: true };
  target.id = second;
  if (third === '_history') {
    if (fourth === undefined) return { ...target, history: true };
    return { ...target, versionId: fourth };
  }
  if (third?.startsWith('$')) return { ...target, operation: third };
  if (third !== undefined) throw badRequest(`The request url '${url}' is not understood`);
  return target;
}
