/**
 * Pass 2 of validation: a walk over a resource driven by the R4 element model, precomputed per
 * type into maps of JSON key → what lives there: reference strings (format and target type),
 * nested resources (contained, Bundle.entry.resource, Parameters.parameter.resource, ...),
 * required elements. Shapes and primitive formats are the JSON schema's job (pass 1); this walk
 * silently skips whatever has the wrong shape.
 */
import { childElements, isResourceType, typeKind } from './definitions.js';
import { childNode, elementKeys, hasUnderscore } from './element-keys.js';
import { expressionOf, type Issues } from './issues.js';

export const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;

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

/** Walk model of a type or backbone path, built on first use and cached; warmUpValidators builds them all. */
export function walkNode(name: string): WalkNode {
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

export interface Container {
  /** id → resourceType of the container's contained resources. */
  contained: Map<string, string>;
}
/**
 * Validates a nested resource (contained, Bundle.entry.resource, ...) with both passes. Supplied by
 * validator.ts, which owns the schema pass, so this module does not import it back.
 */
export type NestedValidator = (
  resource: unknown,
  prefix: string,
  issues: Issues,
  container: Container | undefined,
  isContained: boolean,
) => void;

interface WalkContext {
  issues: Issues;
  container: Container;
  prefix: string;
  segs: (string | number)[];
  nested: NestedValidator;
}

export function isObject(v: unknown): v is Record<string, unknown> {
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
        ctx.nested(value, where, ctx.issues, ctx.container, true);
      } else {
        ctx.nested(value, where, ctx.issues, undefined, false);
      }
      return;
    }
  }
}

export function containerOf(resource: Record<string, unknown>): Container {
  const contained = new Map<string, string>();
  const list = resource.contained;
  if (Array.isArray(list)) {
    for (const c of list) {
      if (isObject(c) && typeof c.id === 'string' && typeof c.resourceType === 'string') contained.set(c.id, c.resourceType);
    }
  }
  return { contained };
}

/** Walks a resource of `type` (whose expression is `prefix`): references, nested resources, required elements. */
export function walkResource(
  resource: Record<string, unknown>,
  type: string,
  prefix: string,
  issues: Issues,
  container: Container,
  nested: NestedValidator,
): void {
  walkObject(resource, walkNode(type), { issues, container, prefix, segs: [], nested });
}
