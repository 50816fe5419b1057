/**
 * Index extraction: the rows of the sp_* tables for one resource, computed from the search
 * parameters of its type (parameters.ts). Runs on every write, so it avoids fhirpath.js whenever
 * the parameter's expression is a simple path (fastpath.ts) and allocates little.
 *
 * Row conventions (aligned with INDEX_COLUMNS in src/store/schema.ts):
 * - sp_token [system, code, display]: one row per Coding (CodeableConcept.text as a row with only
 *   display), Identifier (system, value, type.text), ContactPoint (null, value, null; use is not
 *   indexed), primitive code/string/uri/id (null, value, null), boolean (null, 'true'|'false', null).
 *   A Reference with an identifier also gives a token row under `<code>:identifier`, for the
 *   :identifier modifier; an Identifier with type codings gives rows under `<code>:of-type`
 *   [type system|type code, value, null], for the :of-type modifier.
 * - sp_string [norm, exact]: one row per string part (each HumanName / Address part separately);
 *   norm per values.ts.
 * - sp_reference [target_type, target_id, target_version, target_url]: 'Type/id[/_history/v]'
 *   gives type/id/version; an absolute URL gives target_url (without any /_history part) and, if it
 *   ends in Type/id, type/id too; canonical values give target_url with '|version' split into
 *   target_version. Contained ('#x') and urn:uuid/urn:oid references are not indexed.
 * - sp_date [lo, hi]: the inclusive range of values.ts; Period open ends are MIN_DATE / MAX_DATE.
 * - sp_number [lo, hi], sp_quantity [system, code, unit, lo, hi]: implicit precision ranges as
 *   exact decimal strings; a Quantity comparator (<, <=, >, >=) opens the range on that side.
 * - sp_uri [value]; a canonical 'url|version' also gives a row with the bare url.
 * - sp_composite: composite parameters, see composite-extract.ts.
 * _id and _lastUpdated are columns of `resource`; special parameters are not indexed.
 * Rows are de-duplicated per resource.
 */
import type { Resource } from 'fhir/r4.js';
import type { IndexRow } from '../store/resource-store.js';
import type { IndexTable } from '../store/schema.js';
import { searchParamsFor, type SearchParamDef, type SearchParamType, type TypedValue } from './parameters.js';
import { compositeIndexRows } from './composite-extract.js';
import { RowSink } from './row-sink.js';
import { isTypeOrSubtype } from './fastpath.js';
import { ownsRows, type SearchRegistry } from './registry.js';
import { clipChars, MAX_DATE, MAX_INDEXED_TEXT, MIN_DATE, normForIndex, numberRange, parseDate, decimalRange, type DecimalRange } from './values.js';

/** One index row (values aligned with INDEX_COLUMNS[table]; numeric bounds are exact decimal strings). */
export type { IndexRow } from '../store/resource-store.js';

/** Index table of each indexed parameter type. */
export const TABLE_FOR_TYPE: Partial<Record<SearchParamType, IndexTable>> = {
  token: 'sp_token',
  string: 'sp_string',
  reference: 'sp_reference',
  date: 'sp_date',
  number: 'sp_number',
  quantity: 'sp_quantity',
  uri: 'sp_uri',
};

/** Parameters stored as columns of `resource` rather than as index rows. */
const COLUMN_PARAMS = new Set(['_id', '_lastUpdated']);

/**
 * Hook for unit canonicalisation (UCUM): given a quantity's system, code and value range, return
 * the canonical form to index as an additional sp_quantity row under `<code>:canonical` (so that
 * searches without units and sorting never see it), or undefined. Set by ucum.ts.
 */
export type QuantityCanonicalizer = (q: { system: string | null; code: string | null; lo: string; hi: string }) =>
  | { system: string; code: string; lo: string; hi: string }
  | undefined;
let canonicalizer: QuantityCanonicalizer | undefined;
export function setQuantityCanonicalizer(fn: QuantityCanonicalizer | undefined): void {
  canonicalizer = fn;
}

interface IndexedParams {
  defs: SearchParamDef[];
  /** False when some code has a ':' (a `<code>:identifier` row could then meet another parameter's rows). */
  segmented: boolean;
}

/** Indexed parameters per registry map (a new map after addCustomSearchParameter, so this never goes stale). */
const indexedCache = new WeakMap<ReadonlyMap<string, SearchParamDef>, IndexedParams>();

function indexedParams(resourceType: string, registry?: SearchRegistry): IndexedParams {
  const all = registry ? registry.paramsFor(resourceType) : searchParamsFor(resourceType);
  let list = indexedCache.get(all);
  if (!list) {
    // A parameter read through other parameters' rows (registry.ts indexParamsOf) adds none of its own.
    const defs = [...all.values()].filter((d) => !COLUMN_PARAMS.has(d.code) && TABLE_FOR_TYPE[d.type] !== undefined && d.expression && ownsRows(all, d.code));
    list = { defs, segmented: ![...all.keys()].some((code) => code.includes(':')) };
    indexedCache.set(all, list);
  }
  return list;
}

/** The values of the parameter being extracted, reused for every parameter (emptied after each). */
const scratch: TypedValue[] = [];

/** The index rows of `resource` for all search parameters of its type. */
/** `registry`: the tenant's parameters (registry.ts); the R4 core ones when omitted. */
export function extractIndexRows(resource: Resource, registry?: SearchRegistry): IndexRow[] {
  const sink = new RowSink();
  const { defs, segmented } = indexedParams(resource.resourceType, registry);
  for (let d = 0; d < defs.length; d++) {
    const def = defs[d]!;
    if (segmented) sink.segment();
    while (scratch.length > 0) scratch.pop(); // cheaper than setting length (a runtime call) for the few values a parameter has
    if (def.evaluateTypedInto) def.evaluateTypedInto(resource, scratch);
    else for (const v of def.evaluateTyped(resource)) scratch.push(v);
    for (let i = 0; i < scratch.length; i++) addValue(sink, def, scratch[i]!);
  }
  while (scratch.length > 0) scratch.pop();
  if (segmented) sink.segment();
  for (const row of compositeIndexRows(resource, registry)) sink.add(row.table, row.param, row.values);
  return sink.rows;
}

/** The index rows one parameter contributes for `resource` (tests, re-indexing a single parameter). */
export function extractParamRows(resource: Resource, def: SearchParamDef): IndexRow[] {
  const sink = new RowSink();
  for (const v of def.evaluateTyped(resource)) addValue(sink, def, v);
  return sink.rows;
}

function addValue(sink: RowSink, def: SearchParamDef, tv: TypedValue): void {
  switch (def.type) {
    case 'token':
      return tokenRows(sink, def.code, tv);
    case 'string':
      return stringRows(sink, def.code, tv);
    case 'reference':
      return referenceRows(sink, def, tv);
    case 'date':
      return dateRows(sink, def.code, tv);
    case 'number':
      return numberRows(sink, def.code, tv);
    case 'quantity':
      return quantityRows(sink, def.code, tv);
    case 'uri':
      return uriRows(sink, def.code, tv);
    default:
      return;
  }
}

type Obj = Record<string, unknown>;

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? clipChars(v, MAX_INDEXED_TEXT) : null);
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------
// token

function codingRow(sink: RowSink, param: string, c: unknown): void {
  if (!isObj(c)) return;
  const system = str(c.system);
  const code = str(c.code);
  const display = str(c.display);
  if (system === null && code === null && display === null) return;
  sink.add('sp_token', param, [system, code, display]);
}

function codeableConceptRows(sink: RowSink, param: string, cc: Obj): void {
  const codings = cc.coding;
  if (Array.isArray(codings)) for (const c of codings) codingRow(sink, param, c);
  const text = str(cc.text);
  if (text !== null) sink.add('sp_token', param, [null, null, text]);
}

function identifierRow(sink: RowSink, param: string, id: Obj): void {
  const system = str(id.system);
  const value = str(id.value);
  if (system === null && value === null) return;
  const type = id.type;
  sink.add('sp_token', param, [system, value, isObj(type) ? str(type.text) : null]);
}

/** For :of-type: `<code>:of-type` rows [type.coding system|code, identifier value, null]. */
function identifierTypeRows(sink: RowSink, param: string, id: Obj): void {
  const value = str(id.value);
  const codings = isObj(id.type) ? id.type.coding : undefined;
  if (value === null || !Array.isArray(codings)) return;
  for (const c of codings) {
    if (isObj(c) && str(c.system) !== null && str(c.code) !== null) sink.add('sp_token', `${param}:of-type`, [`${c.system}|${c.code}`, value, null]);
  }
}

function tokenRows(sink: RowSink, param: string, { value, type }: TypedValue): void {
  if (typeof value === 'string') {
    const code = str(value);
    if (code !== null) sink.add('sp_token', param, [null, code, null]);
    return;
  }
  if (typeof value === 'boolean') {
    sink.add('sp_token', param, [null, value ? 'true' : 'false', null]);
    return;
  }
  if (typeof value === 'number') {
    sink.add('sp_token', param, [null, String(value), null]);
    return;
  }
  if (!isObj(value)) return;
  switch (type) {
    case 'CodeableConcept':
      return codeableConceptRows(sink, param, value);
    case 'Coding':
      return codingRow(sink, param, value);
    case 'Identifier':
      identifierRow(sink, param, value);
      return identifierTypeRows(sink, param, value);
    case 'ContactPoint': {
      const v = str(value.value);
      if (v !== null) sink.add('sp_token', param, [null, v, null]);
      return;
    }
    default:
      // Unknown type (an expression fhirpath.js could not type): recognise the shape.
      if (type === undefined || type === 'Element' || type === 'BackboneElement') {
        if (Array.isArray(value.coding) || typeof value.text === 'string') codeableConceptRows(sink, param, value);
        else if ('code' in value) codingRow(sink, param, value);
        else if ('value' in value) identifierRow(sink, param, value);
      }
  }
}

// ---------------------------------------------------------------------------------------------
// string

function stringPart(sink: RowSink, param: string, v: unknown): void {
  if (typeof v !== 'string') return;
  const norm = normForIndex(v);
  if (norm.length === 0) return;
  sink.add('sp_string', param, [norm, clipChars(v, MAX_INDEXED_TEXT * 4)]);
}

function stringParts(sink: RowSink, param: string, v: unknown): void {
  if (Array.isArray(v)) for (const e of v) stringPart(sink, param, e);
  else stringPart(sink, param, v);
}

function stringRows(sink: RowSink, param: string, { value, type }: TypedValue): void {
  if (typeof value === 'string') return stringPart(sink, param, value);
  if (!isObj(value)) return;
  if (type === 'HumanName' || (type === undefined && ('family' in value || 'given' in value))) {
    stringParts(sink, param, value.family);
    stringParts(sink, param, value.given);
    stringParts(sink, param, value.prefix);
    stringParts(sink, param, value.suffix);
    stringParts(sink, param, value.text);
  } else if (type === 'Address' || (type === undefined && ('line' in value || 'city' in value))) {
    stringParts(sink, param, value.line);
    stringParts(sink, param, value.city);
    stringParts(sink, param, value.district);
    stringParts(sink, param, value.state);
    stringParts(sink, param, value.postalCode);
    stringParts(sink, param, value.country);
    stringParts(sink, param, value.text);
  }
}

// ---------------------------------------------------------------------------------------------
// reference

const RELATIVE_REF = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;
const ABSOLUTE_REF = /^([a-z][a-z0-9+.-]*:\/\/.*?)\/([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;
const CANONICAL_TYPES = new Set(['canonical', 'uri', 'url', 'oid', 'uuid', 'string']);

/** Parsed reference string: [target_type, target_id, target_version, target_url], or undefined when not indexed. */
export function parseReference(ref: string, typeHint?: string | null): [string | null, string | null, string | null, string | null] | undefined {
  if (ref.length === 0 || ref[0] === '#' || ref.startsWith('urn:uuid:') || ref.startsWith('urn:oid:')) return undefined;
  let m = RELATIVE_REF.exec(ref);
  if (m) return [m[1]!, m[2]!, m[3] ?? null, null];
  m = ABSOLUTE_REF.exec(ref);
  if (m) return [m[2]!, m[3]!, m[4] ?? null, clipChars(`${m[1]}/${m[2]}/${m[3]}`, MAX_INDEXED_TEXT)];
  if (ref.includes(':')) return [null, null, null, clipChars(ref, MAX_INDEXED_TEXT)];
  if (!ref.includes('/') && ref.length <= 64) return [typeHint ?? null, ref, null, null];
  return [null, null, null, clipChars(ref, MAX_INDEXED_TEXT)];
}

/** A canonical URL with an optional '|version': [url, version]. */
export function splitCanonical(url: string): [string, string | null] {
  const bar = url.lastIndexOf('|');
  return bar < 0 ? [url, null] : [url.slice(0, bar), url.slice(bar + 1) || null];
}

function referenceRows(sink: RowSink, def: SearchParamDef, { value, type }: TypedValue): void {
  if (typeof value === 'string') {
    if (!CANONICAL_TYPES.has(type ?? 'string') || value.length === 0) return;
    const [url, version] = splitCanonical(value);
    sink.add('sp_reference', def.code, [null, null, version === null ? null : clipChars(version, MAX_INDEXED_TEXT), clipChars(url, MAX_INDEXED_TEXT)]);
    return;
  }
  if (!isObj(value)) return;
  if (type !== undefined && type !== 'Reference' && !isTypeOrSubtype(type, 'Reference')) return;
  const ref = value.reference;
  if (typeof ref === 'string') {
    const hint = typeof value.type === 'string' ? value.type : def.targets?.length === 1 ? def.targets[0]! : null;
    const row = parseReference(ref, hint);
    if (row) sink.add('sp_reference', def.code, row);
  }
  const identifier = value.identifier;
  if (isObj(identifier)) identifierRow(sink, `${def.code}:identifier`, identifier);
}

// ---------------------------------------------------------------------------------------------
// date

function dateValueRow(sink: RowSink, param: string, v: unknown): void {
  if (typeof v !== 'string') return;
  const d = parseDate(v);
  if (d) sink.add('sp_date', param, [d.lo, d.hi]);
}

function periodRow(sink: RowSink, param: string, p: Obj): void {
  const start = typeof p.start === 'string' ? parseDate(p.start) : undefined;
  const end = typeof p.end === 'string' ? parseDate(p.end) : undefined;
  if (!start && !end) return;
  sink.add('sp_date', param, [start ? start.lo : MIN_DATE, end ? end.hi : MAX_DATE]);
}

function dateRows(sink: RowSink, param: string, { value, type }: TypedValue): void {
  if (typeof value === 'string') return dateValueRow(sink, param, value);
  if (!isObj(value)) return;
  if (type === 'Period' || (type === undefined && ('start' in value || 'end' in value))) return periodRow(sink, param, value);
  if (type === 'Timing' || (type === undefined && 'event' in value)) {
    const events = value.event;
    if (Array.isArray(events)) for (const e of events) dateValueRow(sink, param, e);
  }
}

// ---------------------------------------------------------------------------------------------
// number and quantity

function toRange(v: unknown): DecimalRange | undefined {
  if (typeof v === 'number') return numberRange(v);
  if (typeof v === 'string') return decimalRange(v.trim());
  return undefined;
}

function numberRows(sink: RowSink, param: string, { value, type }: TypedValue): void {
  if (typeof value === 'number' || typeof value === 'string') {
    const r = toRange(value);
    if (r) sink.add('sp_number', param, [r.lo, r.hi]);
    return;
  }
  if (!isObj(value)) return;
  if (type === 'Range' || (type === undefined && ('low' in value || 'high' in value))) {
    const lo = isObj(value.low) ? toRange(value.low.value) : undefined;
    const hi = isObj(value.high) ? toRange(value.high.value) : undefined;
    if (lo || hi) sink.add('sp_number', param, [lo ? lo.lo : '-Infinity', hi ? hi.hi : 'Infinity']);
  } else if (type !== undefined && isTypeOrSubtype(type, 'Quantity')) {
    const r = toRange(value.value);
    if (r) sink.add('sp_number', param, [r.lo, r.hi]);
  }
}

function addQuantity(sink: RowSink, param: string, system: string | null, code: string | null, unit: string | null, lo: string, hi: string): void {
  sink.add('sp_quantity', param, [system, code, unit, lo, hi]);
  if (canonicalizer) {
    const c = canonicalizer({ system, code, lo, hi });
    if (c) sink.add('sp_quantity', `${param}:canonical`, [c.system, c.code, null, c.lo, c.hi]);
  }
}

function quantityRows(sink: RowSink, param: string, { value, type }: TypedValue): void {
  if (!isObj(value)) return;
  if (type === 'Range' || (type === undefined && ('low' in value || 'high' in value))) {
    const low = isObj(value.low) ? value.low : undefined;
    const high = isObj(value.high) ? value.high : undefined;
    const lo = low ? toRange(low.value) : undefined;
    const hi = high ? toRange(high.value) : undefined;
    if (!lo && !hi) return;
    const u = (lo ? low : high)!;
    addQuantity(sink, param, str(u.system), str(u.code), str(u.unit), lo ? lo.lo : '-Infinity', hi ? hi.hi : 'Infinity');
    return;
  }
  if (type === 'Money') {
    const r = toRange(value.value);
    if (r) addQuantity(sink, param, 'urn:iso:std:iso:4217', str(value.currency), null, r.lo, r.hi);
    return;
  }
  if (type !== undefined && !isTypeOrSubtype(type, 'Quantity')) return; // SampledData, Ratio...
  const r = toRange(value.value);
  if (!r) return;
  let lo = r.lo;
  let hi = r.hi;
  switch (value.comparator) {
    case '<':
    case '<=':
      lo = '-Infinity';
      break;
    case '>':
    case '>=':
      hi = 'Infinity';
      break;
  }
  addQuantity(sink, param, str(value.system), str(value.code), str(value.unit), lo, hi);
}

// ---------------------------------------------------------------------------------------------
// uri

function uriRows(sink: RowSink, param: string, { value, type }: TypedValue): void {
  if (typeof value !== 'string' || value.length === 0) return;
  sink.add('sp_uri', param, [clipChars(value, MAX_INDEXED_TEXT)]);
  // A versioned canonical is also found by its bare URL.
  if (type === 'canonical' && value.includes('|')) sink.add('sp_uri', param, [clipChars(splitCanonical(value)[0], MAX_INDEXED_TEXT)]);
}

