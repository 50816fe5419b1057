/**
 * _summary and _elements (search.html#summary, #elements): subsets of stored resources. Stored JSON
 * is parsed only when a subset is asked for; otherwise entries embed the stored text as is.
 *
 * - true: the elements marked isSummary in R4, recursively inside backbone elements (datatypes are
 *   kept whole), plus mandatory (min ≥ 1) elements of what is kept.
 * - text: text, id, meta and the top-level mandatory elements.
 * - data: everything but text.
 * - _elements=a,b: those top-level elements (a choice element by its name, `value` or `value[x]`,
 *   or one of its JSON names, `valueQuantity`), plus id, meta and the top-level mandatory elements.
 * Each subset is marked with the SUBSETTED tag (meta.tag) so that it is not mistaken for the whole.
 */
import { childElements, type ChildElement } from '../fhir/definitions.js';
import { badRequest } from '../fhir/outcome.js';
import { isSummaryElement } from '../fhir/summary-elements.js';

export type Shape = { kind: 'true' | 'text' | 'data' } | { kind: 'elements'; names: ReadonlySet<string> };

export const SUBSETTED = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  code: 'SUBSETTED',
  display: 'Resource encoded in summary mode',
};

type Json = Record<string, unknown>;

/** The shape the parameters ask for, or undefined for whole resources (the fast path). */
export function shapeOf(summary: string | undefined, elements: string[] | undefined): Shape | undefined {
  if (summary === 'true' || summary === 'text' || summary === 'data') return { kind: summary };
  if ((summary === undefined || summary === 'false') && elements?.length) return { kind: 'elements', names: new Set(elements) };
  return undefined;
}

/** The JSON element that `key` is the value (or, for `_key`, the primitive extension) of. */
function elementOf(children: readonly ChildElement[], key: string): ChildElement | undefined {
  const name = key.startsWith('_') ? key.slice(1) : key;
  for (const c of children) {
    if (c.name === name && !c.choice) return c;
    if (c.choice && name.length > c.name.length && name.startsWith(c.name) && /[A-Z]/.test(name[c.name.length]!)) return c;
  }
  return undefined;
}

const isBackbone = (c: ChildElement) => c.contentReference !== undefined || c.types.includes('BackboneElement') || c.types.includes('Element');

/** _summary=true on one object (a resource or a backbone element) whose element definitions are at `path`. */
function summaryOf(value: Json, path: string): Json {
  const children = childElements(path);
  if (!children) return value;
  const out: Json = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'resourceType') {
      out[key] = v;
      continue;
    }
    const el = elementOf(children, key);
    if (!el || !(isSummaryElement(path, el) || el.min > 0)) continue;
    if (isBackbone(el) && v !== null && typeof v === 'object' && !key.startsWith('_')) {
      const inner = el.contentReference ?? el.path;
      out[key] = Array.isArray(v) ? v.map((x) => (x && typeof x === 'object' ? summaryOf(x as Json, inner) : x)) : summaryOf(v as Json, inner);
    } else {
      out[key] = v;
    }
  }
  return out;
}

function topLevel(resource: Json, keep: (el: ChildElement, key: string) => boolean): Json {
  const children = childElements(String(resource.resourceType)) ?? [];
  const out: Json = {};
  for (const [key, v] of Object.entries(resource)) {
    if (key === 'resourceType' || key === 'id' || key === 'meta') {
      out[key] = v;
      continue;
    }
    const el = elementOf(children, key);
    if (el && (el.min > 0 || keep(el, key))) out[key] = v;
  }
  return out;
}

function markSubsetted(resource: Json): Json {
  const meta = { ...((resource.meta as Json | undefined) ?? {}) };
  const tags = Array.isArray(meta.tag) ? [...(meta.tag as Json[])] : [];
  if (!tags.some((t) => t.system === SUBSETTED.system && t.code === SUBSETTED.code)) tags.push(SUBSETTED);
  meta.tag = tags;
  // meta goes where it was, or right after id.
  const out: Json = {};
  let placed = false;
  for (const [k, v] of Object.entries(resource)) {
    if (k === 'meta') {
      out.meta = meta;
      placed = true;
    } else {
      out[k] = v;
      if (k === 'id' && !('meta' in resource)) {
        out.meta = meta;
        placed = true;
      }
    }
  }
  if (!placed) out.meta = meta;
  return out;
}

/** A resource object reduced to `shape` and tagged SUBSETTED. */
export function shapeResource(resource: Json, shape: Shape): Json {
  let out: Json;
  switch (shape.kind) {
    case 'true':
      out = summaryOf(resource, String(resource.resourceType));
      break;
    case 'text':
      out = topLevel(resource, (el) => el.name === 'text');
      break;
    case 'data': {
      const { text: _text, ...rest } = resource;
      out = rest;
      break;
    }
    case 'elements': {
      const type = String(resource.resourceType);
      const names = shape.names;
      out = topLevel(resource, (el, key) => {
        const bare = key.startsWith('_') ? key.slice(1) : key;
        return names.has(el.name) || names.has(`${el.name}[x]`) || names.has(bare) || names.has(`${type}.${el.name}`) || names.has(`${type}.${bare}`);
      });
      break;
    }
  }
  return markSubsetted(out);
}

/** Stored JSON text reduced to `shape` (JSON text again). */
export function shapeText(text: string, shape: Shape): string {
  return JSON.stringify(shapeResource(JSON.parse(text) as Json, shape));
}

/**
 * _summary / _elements on read and vread (the spec allows them there too): a 200 result's body
 * reduced to the shape asked for; anything else unchanged. _summary=count means nothing here.
 */
export function shapeReadResult<T extends { status: number; body?: unknown }>(result: T, params: URLSearchParams): T {
  const summary = params.get('_summary') ?? undefined;
  if (summary !== undefined && !['true', 'text', 'data', 'count', 'false'].includes(summary)) {
    throw badRequest(`_summary must be true, text, data, count or false, got '${summary}'`, ['_summary']);
  }
  const elements = params.get('_elements')?.split(',').map((e) => e.trim()).filter(Boolean);
  const shape = shapeOf(summary, elements);
  if (!shape || result.status !== 200 || result.body === undefined) return result;
  const json = (typeof result.body === 'string' ? JSON.parse(result.body) : result.body) as Json;
  return { ...result, body: JSON.stringify(shapeResource(json, shape)) };
}
