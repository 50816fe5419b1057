/**
 * The engine behind FHIRPath Patch (hl7.org/fhir/R4/fhirpatch.html): locating the nodes a
 * FHIRPath expression selects inside a resource, reading the typed value of a patch
 * operation, and the five operations themselves, applied in place to a working copy.
 *
 * Locating nodes: with `resolveInternalTypes: false`, fhirpath.js returns ResourceNode
 * wrappers whose `data` is the very object inside the input (no copy) and which carry
 * `parentResNode`, `propName` (the element name, WITHOUT the choice-type suffix, e.g.
 * 'deceased' for deceasedBoolean) and `index` (the position in the underlying JSON array,
 * including null placeholders of primitive lists). That is enough to find the parent
 * object and JSON key of every selected node, including primitives, whatever functions
 * (where(), first(), [n], ofType()...) the expression used.
 *
 * Status codes: a malformed operation (bad FHIRPath syntax, a path that yields computed
 * values rather than elements, a value part with no value) is a 400; an operation that is
 * well formed but does not fit this resource (no match, too many matches, index out of
 * range, wrong value type, adding a single-valued element that already exists) is a 422.
 */
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import { badRequest, unprocessable } from '../fhir/outcome.js';

type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const eqType = (a: string, b: string | undefined) => b !== undefined && a.toLowerCase() === b.toLowerCase();

// ---------------------------------------------------------------- the R4 model

interface ModelData {
  path2Type: Record<string, string | { code: string }>;
  path2Repeating: Record<string, boolean>;
  choiceTypePaths: Record<string, string[]>;
  pathsDefinedElsewhere: Record<string, string>;
  type2Parent: Record<string, string>;
}
const model = r4 as unknown as ModelData;

const PRIMITIVES = ['boolean', 'integer', 'integer64', 'string', 'decimal', 'uri', 'url', 'canonical',
  'base64Binary', 'instant', 'date', 'dateTime', 'time', 'code', 'oid', 'id', 'markdown',
  'unsignedInt', 'positiveInt', 'uuid', 'xhtml'];
const PRIMITIVE_BY_LOWER = new Map(PRIMITIVES.map((t) => [t.toLowerCase(), t]));
const isPrimitiveType = (t: string) => t.startsWith('System.') || PRIMITIVE_BY_LOWER.has(t.toLowerCase());

/** The JSON shape of a primitive type: string, number or boolean. */
function jsonKind(t: string): 'string' | 'number' | 'boolean' {
  const lower = t.replace(/^System\./, '').toLowerCase();
  if (lower === 'boolean') return 'boolean';
  return ['integer', 'decimal', 'unsignedint', 'positiveint'].includes(lower) ? 'number' : 'string';
}

export interface ElementInfo {
  /** The element's declared type(s); several for a choice element (e.g. ['Boolean', 'DateTime']). */
  types: string[];
  choice: boolean;
  repeating: boolean;
  /** The type path for looking up this element's own children (e.g. 'Patient.contact' or 'HumanName'). */
  childTypePath: string | undefined;
}

/** What the R4 model says about element `name` of the type at `typePath` ('Patient', 'Patient.contact', 'HumanName'). */
export function elementInfo(typePath: string, name: string): ElementInfo | undefined {
  for (let base: string | undefined = model.pathsDefinedElsewhere[typePath] ?? typePath; base; base = model.type2Parent[base]) {
    const path = `${base}.${name}`;
    const elsewhere = model.pathsDefinedElsewhere[path]; // e.g. Questionnaire.item.item -> Questionnaire.item
    if (elsewhere) {
      return { types: ['BackboneElement'], choice: false, repeating: Boolean(model.path2Repeating[elsewhere]), childTypePath: elsewhere };
    }
    const choice = model.choiceTypePaths[path];
    const declared = model.path2Type[path];
    if (!choice && declared === undefined) continue;
    const type = declared === undefined ? undefined : typeof declared === 'string' ? declared : declared.code;
    return {
      types: choice ?? [type as string],
      choice: Boolean(choice),
      repeating: Boolean(model.path2Repeating[path]),
      childTypePath: type === 'BackboneElement' || type === 'Element' ? path : type,
    };
  }
  return undefined;
}

/** Whether the model describes the type at `typePath` at all (every type has an `id`). */
export const modelKnows = (typePath: string | undefined) => typePath !== undefined && elementInfo(typePath, 'id') !== undefined;

function isA(type: string, expected: string): boolean {
  for (let t: string | undefined = type; t; t = model.type2Parent[t]) if (eqType(expected, t)) return true;
  return false;
}

// ---------------------------------------------------------------- values

/** A value as given in a patch: a value[x], a contained resource, or a list of named parts. */
export type PatchValue =
  | { kind: 'primitive' | 'complex'; type: string; json: unknown; ext?: unknown }
  | { kind: 'resource'; type: string; json: Obj }
  | { kind: 'parts'; parts: unknown[] };

/** A value ready to be written into the resource: its JSON, the `_name` sibling (primitives) and its type. */
interface Materialized { json: unknown; ext?: unknown; type: string | undefined }

const NAME_RE = /^[A-Za-z][A-Za-z0-9_]*$/;

/** Read the value carried by a Parameters part (value[x], resource or part), or undefined if none. */
export function readValue(part: Obj, what: string): PatchValue | undefined {
  const keys = Object.keys(part).filter((k) => /^value[A-Z]/.test(k));
  const forms = keys.length + (part.resource !== undefined ? 1 : 0) + (part.part !== undefined ? 1 : 0);
  if (forms > 1) throw badRequest(`${what} has more than one value`);
  if (part.part !== undefined) {
    if (!Array.isArray(part.part)) throw badRequest(`${what}: 'part' must be an array`);
    return { kind: 'parts', parts: part.part };
  }
  if (part.resource !== undefined) {
    if (!isObj(part.resource) || typeof part.resource.resourceType !== 'string') throw badRequest(`${what}: 'resource' is not a resource`);
    return { kind: 'resource', type: part.resource.resourceType, json: part.resource };
  }
  if (keys.length === 0) return undefined;
  const key = keys[0]!;
  const suffix = key.slice(5);
  const primitive = PRIMITIVE_BY_LOWER.get(suffix.toLowerCase());
  const json = part[key];
  if (primitive ? typeof json !== jsonKind(primitive) : !isObj(json)) throw badRequest(`${what}: ${key} has the wrong JSON shape`);
  return primitive
    ? { kind: 'primitive', type: primitive, json, ext: part[`_${key}`] }
    : { kind: 'complex', type: suffix, json };
}

/** Throw a 422 unless `v` fits an element described by `info`. */
function checkType(info: ElementInfo, v: PatchValue, where: string): void {
  const given = v.kind === 'parts' ? 'a list of parts' : v.type;
  const fail = () => unprocessable(`${where} has type ${info.types.join(' | ')}; the value is ${given}`);
  if (info.choice) {
    if (v.kind === 'parts' || v.kind === 'resource' || !info.types.some((t) => eqType(t, v.type))) throw fail();
    return;
  }
  const expected = info.types[0]!;
  if (v.kind === 'resource') {
    if (expected !== 'Resource' && !eqType(expected, v.type)) throw fail();
  } else if (expected === 'Resource') {
    throw fail();
  } else if (isPrimitiveType(expected)) {
    // Primitive types with the same JSON shape are interchangeable (clients often send valueString for a code).
    if (v.kind !== 'primitive' || jsonKind(expected) !== jsonKind(v.type)) throw fail();
  } else if (v.kind === 'primitive' || (v.kind === 'complex' && !isA(v.type, expected))) {
    throw fail();
  }
}

/** The JSON key of element `name` holding a value of `type` (choice elements carry the type: deceasedBoolean). */
function jsonKey(name: string, info: ElementInfo | undefined, type: string | undefined, where: string): string {
  if (!info?.choice) return name;
  if (!type) throw unprocessable(`${where} is a choice element; give its value as a typed value[x]`);
  return name + cap(type);
}

/** Type-check `v` against `info` (when known) and turn it into the JSON to write (a fresh copy). */
export function materialize(v: PatchValue, info: ElementInfo | undefined, where: string): Materialized {
  if (info) checkType(info, v, where);
  if (v.kind === 'parts') return { json: buildFromParts(v.parts, info?.childTypePath, where), type: undefined };
  const ext = v.kind === 'primitive' && v.ext !== undefined ? structuredClone(v.ext) : undefined;
  return { json: structuredClone(v.json), ext, type: v.type };
}

/** Build a complex value from parts named after its children, e.g. [{name:'system', valueUri}, {name:'value', valueString}]. */
function buildFromParts(parts: unknown[], typePath: string | undefined, where: string): Obj {
  const out: Obj = {};
  const known = modelKnows(typePath);
  const seen = new Map<string, number>();
  for (const p of parts) {
    const name = isObj(p) ? p.name : undefined;
    if (!isObj(p) || typeof name !== 'string' || !NAME_RE.test(name)) throw badRequest(`${where}: every part of a complex value needs a valid name`);
    seen.set(name, (seen.get(name) ?? 0) + 1);
  }
  for (const p of parts as Obj[]) {
    const name = p.name as string;
    const childWhere = `${where}.${name}`;
    const info = known ? elementInfo(typePath!, name) : undefined;
    if (known && !info) throw unprocessable(`${typePath} has no element '${name}'`);
    const v = readValue(p, `part '${childWhere}'`);
    if (!v) throw badRequest(`part '${childWhere}' has no value`);
    const m = materialize(v, info, childWhere);
    const key = jsonKey(name, info, m.type, childWhere);
    const repeating = info ? info.repeating : seen.get(name)! > 1;
    if (repeating) insertAt(out, key, ((out[key] as unknown[] | undefined) ?? []).length, m);
    else if (key in out) throw unprocessable(`${childWhere} does not repeat but is given more than once`);
    else setValue(out, key, m);
  }
  return out;
}

// ---------------------------------------------------------------- JSON helpers (keep `_name` siblings aligned)

function setValue(obj: Obj, key: string, m: Materialized): void {
  obj[key] = m.json;
  if (m.ext !== undefined) obj[`_${key}`] = m.ext;
  else delete obj[`_${key}`];
}

function insertAt(obj: Obj, key: string, idx: number, m: Materialized): void {
  const list = (obj[key] ??= []) as unknown[];
  list.splice(idx, 0, m.json);
  const ext = obj[`_${key}`];
  if (Array.isArray(ext)) ext.splice(idx, 0, m.ext ?? null);
  else if (m.ext !== undefined) obj[`_${key}`] = list.map((_, i) => (i === idx ? m.ext : null));
}

/** Remove item `idx` of list `key`, returning it (with its extension sibling) and tidying empty lists. */
function removeAt(obj: Obj, key: string, idx: number): Materialized {
  const list = obj[key] as unknown[];
  const [json] = list.splice(idx, 1);
  const ext = obj[`_${key}`];
  const [extItem] = Array.isArray(ext) ? ext.splice(idx, 1) : [];
  if (list.length === 0) delete obj[key];
  if (Array.isArray(ext) && ext.every((e) => e === null)) delete obj[`_${key}`];
  return { json, ext: extItem ?? undefined, type: undefined };
}

/** Drop empty objects and lists left behind (an element must have a value or children), except at the root. */
export function prune(node: unknown): boolean {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) if (isObj(node[i]) && prune(node[i])) node[i] = null;
    return node.every((x) => x === null);
  }
  if (!isObj(node)) return false;
  for (const [k, v] of Object.entries(node)) {
    if (!(isObj(v) || Array.isArray(v))) continue;
    if (Array.isArray(v) && !k.startsWith('_') && v.some((x) => isObj(x))) {
      // complex list: remove emptied items rather than leaving nulls
      const kept = v.filter((x) => !(isObj(x) && prune(x)));
      v.splice(0, v.length, ...kept);
    }
    if (prune(v)) delete node[k];
  }
  return Object.keys(node).length === 0;
}

// ---------------------------------------------------------------- locating nodes

interface Node {
  data: unknown;
  path: string | null;
  propName: string | null;
  index: number | null;
  fhirNodeDataType: string | null;
  parentResNode: Node | null;
}
/** Where a node lives: parent object, JSON key and (for list items) index. */
interface Loc { obj: Obj; key: string; index: number | null; parentPath: string | undefined; name: string }

/** Evaluate `path` against `resource`; every result must be an element of the resource. */
export function select(resource: Obj, path: string): Node[] {
  let result: unknown[];
  try {
    result = fhirpath.evaluate(resource, path, undefined, r4, { resolveInternalTypes: false }) as unknown[];
  } catch (e) {
    throw badRequest(`invalid FHIRPath expression '${path}': ${(e as Error).message}`);
  }
  for (const n of result) {
    if (!isObj(n) || !('parentResNode' in n) || !('data' in n)) {
      throw badRequest(`FHIRPath expression '${path}' must select elements of the resource, not computed values`);
    }
  }
  return result as unknown as Node[];
}

function locate(node: Node, what: string): Loc {
  const parent = node.parentResNode;
  const name = node.propName;
  if (!parent || !isObj(parent.data) || !name) throw unprocessable(`${what} is not an element that can be modified`);
  const obj = parent.data;
  const typed = node.fhirNodeDataType ? name + cap(node.fhirNodeDataType) : undefined;
  const key = [name, typed].find((k) => k !== undefined && (k in obj || `_${k}` in obj));
  if (!key) throw unprocessable(`${what}: cannot locate '${name}' in its parent`);
  const value = obj[key] ?? obj[`_${key}`];
  let index: number | null = null;
  if (Array.isArray(value)) {
    index = node.index ?? (value.length === 1 ? 0 : null);
    if (index === null) throw unprocessable(`${what}: cannot tell which item of '${key}' was selected`);
  }
  return { obj, key, index, parentPath: parent.path ?? undefined, name };
}

function exactlyOne(nodes: Node[], path: string): Node {
  if (nodes.length === 0) throw unprocessable(`path '${path}' does not match any element`);
  if (nodes.length > 1) throw unprocessable(`path '${path}' matches ${nodes.length} elements; exactly one is required`);
  return nodes[0]!;
}

/** For insert/move: the path must select all items of one list (e.g. Patient.name[0].given). */
function selectList(nodes: Node[], path: string): { obj: Obj; key: string; list: unknown[]; parentPath: string | undefined; name: string } {
  if (nodes.length === 0) throw unprocessable(`path '${path}' does not match any element`);
  const locs = nodes.map((n) => locate(n, `path '${path}'`));
  const first = locs[0]!;
  const list = first.obj[first.key];
  if (!Array.isArray(list) || locs.some((l) => l.obj !== first.obj || l.key !== first.key || l.index === null)) {
    throw unprocessable(`path '${path}' must select the items of a single list`);
  }
  if (new Set(locs.map((l) => l.index)).size !== list.length) {
    throw unprocessable(`path '${path}' selects only some items of a list; it must select the whole list`);
  }
  return { ...first, list };
}

// ---------------------------------------------------------------- operations (in place on a working copy)

export function opAdd(resource: Obj, path: string, name: string, value: PatchValue): void {
  const node = exactlyOne(select(resource, path), path);
  let target: Obj;
  let typePath: string | undefined;
  if (isObj(node.data)) {
    target = node.data;
    typePath = node.path ?? undefined;
  } else {
    // A primitive: its id/extension live in the `_name` sibling object.
    const loc = locate(node, `path '${path}'`);
    const extKey = `_${loc.key}`;
    if (loc.index === null) target = (loc.obj[extKey] ??= {}) as Obj;
    else {
      const ext = (loc.obj[extKey] ??= (loc.obj[loc.key] as unknown[]).map(() => null)) as unknown[];
      target = (ext[loc.index] ??= {}) as Obj;
    }
    typePath = 'Element';
  }
  const where = `${typePath ?? path}.${name}`;
  const info = typePath ? elementInfo(typePath, name) : undefined;
  if (!info && modelKnows(typePath)) throw unprocessable(`${typePath} has no element '${name}'`);
  const m = materialize(value, info, where);
  const key = jsonKey(name, info, m.type, where);
  if (info ? info.repeating : Array.isArray(target[key])) {
    insertAt(target, key, ((target[key] as unknown[] | undefined) ?? []).length, m);
    return;
  }
  const existing = info?.choice ? info.types.map((t) => name + cap(t)) : [key];
  if (existing.some((k) => k in target || `_${k}` in target)) {
    throw unprocessable(`${where} already has a value and does not repeat; use replace`);
  }
  setValue(target, key, m);
}

export function opInsert(resource: Obj, path: string, index: number, value: PatchValue): void {
  const { obj, key, list, parentPath, name } = selectList(select(resource, path), path);
  if (index > list.length) throw unprocessable(`index ${index} is out of range for '${path}' (${list.length} items)`);
  const info = parentPath ? elementInfo(parentPath, name) : undefined;
  insertAt(obj, key, index, materialize(value, info, path));
}

/**
 * Delete. The R4 table says "Path of the element to delete (if found)" and the base rules make
 * "no match" an error for every operation except delete: a delete that matches nothing is a
 * no-op. "Only a single element can be deleted": more than one match is a 422.
 */
export function opDelete(resource: Obj, path: string): void {
  const nodes = select(resource, path);
  if (nodes.length === 0) return;
  const loc = locate(exactlyOne(nodes, path), `path '${path}'`);
  if (loc.index !== null) removeAt(loc.obj, loc.key, loc.index);
  else {
    delete loc.obj[loc.key];
    delete loc.obj[`_${loc.key}`];
  }
}

export function opReplace(resource: Obj, path: string, value: PatchValue): void {
  const loc = locate(exactlyOne(select(resource, path), path), `path '${path}'`);
  const info = loc.parentPath ? elementInfo(loc.parentPath, loc.name) : undefined;
  const m = materialize(value, info, path);
  if (loc.index !== null) {
    removeAt(loc.obj, loc.key, loc.index);
    insertAt(loc.obj, loc.key, loc.index, m); // recreates the list if removeAt dropped it as empty
    return;
  }
  delete loc.obj[loc.key]; // for a choice element the new value may change the key (deceasedBoolean -> deceasedDateTime)
  delete loc.obj[`_${loc.key}`];
  setValue(loc.obj, jsonKey(loc.name, info, m.type, path), m);
}

export function opMove(resource: Obj, path: string, source: number, destination: number): void {
  const { obj, key, list } = selectList(select(resource, path), path);
  for (const [label, i] of [['source', source], ['destination', destination]] as const) {
    if (i >= list.length) throw unprocessable(`${label} ${i} is out of range for '${path}' (${list.length} items)`);
  }
  // Remove from source, then insert at destination in the shortened list (destination is the final position).
  const item = removeAt(obj, key, source);
  insertAt(obj, key, destination, item);
}
