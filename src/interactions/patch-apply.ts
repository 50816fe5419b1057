/**
 * Applying the two patch formats the patch interaction accepts: RFC 6902 JSON Patch and
 * FHIRPath Patch (hl7.org/fhir/R4/fhirpatch.html). Both work on a deep copy and return it;
 * the input resource is never modified. Neither checks that resourceType and id are
 * unchanged: the caller compares the result with the stored resource.
 *
 * Errors: a malformed patch document is a 400 (badRequest); a well-formed patch that cannot
 * be applied to this resource is a 422 (unprocessable). Diagnostics name the operation by
 * its 0-based index in the patch document.
 */
import type { Resource } from 'fhir/r4.js';
// fast-json-patch is CommonJS and fills `exports` via Object.assign, so Node's ESM loader
// sees no named exports: use the default import (module.exports).
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { FhirError, badRequest, unprocessable } from '../fhir/outcome.js';
import {
  isObj, opAdd, opDelete, opInsert, opMove, opReplace, prune, readValue, type PatchValue,
} from './fhirpath-patch.js';

const withIndex = (e: unknown, prefix: string, expression?: string): unknown =>
  e instanceof FhirError ? e.withContext(prefix, expression) : e;

function requireResource(doc: unknown, what: string): Resource {
  if (!isObj(doc) || typeof doc.resourceType !== 'string') throw unprocessable(`the result of the ${what} is not a resource`);
  return doc as unknown as Resource;
}

// ---------------------------------------------------------------- JSON Patch

const JSON_PATCH_OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** fast-json-patch error names that mean the patch document itself is malformed (400); the rest are 422. */
const MALFORMED = new Set([
  'SEQUENCE_NOT_AN_ARRAY', 'OPERATION_NOT_AN_OBJECT', 'OPERATION_OP_INVALID', 'OPERATION_PATH_INVALID',
  'OPERATION_FROM_REQUIRED', 'OPERATION_VALUE_REQUIRED', 'OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED',
]);

/** A JSON Pointer (RFC 6901): '' or '/'-separated tokens where '~' is only used as '~0' or '~1'. */
function checkPointer(op: Record<string, unknown>, field: 'path' | 'from'): string {
  const p = op[field];
  if (typeof p !== 'string') throw badRequest(`'${field}' is required and must be a string`);
  if (p !== '' && !p.startsWith('/')) throw badRequest(`'${field}' must be a JSON Pointer starting with '/': '${p}'`);
  if (/~(?![01])/.test(p)) throw badRequest(`'${field}' is not a valid JSON Pointer ('~' must be followed by 0 or 1): '${p}'`);
  return p;
}

function checkJsonPatchOperation(op: unknown): Operation {
  if (!isObj(op)) throw badRequest('each operation must be a JSON object');
  if (typeof op.op !== 'string' || !JSON_PATCH_OPS.has(op.op)) {
    throw badRequest(`unknown op '${String(op.op)}' (expected add | remove | replace | move | copy | test)`);
  }
  const path = checkPointer(op, 'path');
  if ((op.op === 'move' || op.op === 'copy')) {
    const from = checkPointer(op, 'from');
    if (op.op === 'move' && path.startsWith(`${from}/`)) throw badRequest(`cannot move '${from}' into its own child '${path}'`);
  }
  if ((op.op === 'add' || op.op === 'replace' || op.op === 'test') && !('value' in op)) {
    throw badRequest(`'value' is required for '${op.op}'`);
  }
  return op as unknown as Operation;
}

/** Apply an RFC 6902 JSON Patch document. */
export function applyJsonPatch(resource: Resource, operations: unknown): Resource {
  if (!Array.isArray(operations)) throw badRequest('a JSON Patch document must be a JSON array of operations');
  // Clone the operations too, so that values added to the result never alias the patch document.
  const ops = structuredClone(operations) as unknown[];
  ops.forEach((op, i) => {
    try {
      checkJsonPatchOperation(op);
    } catch (e) {
      throw withIndex(e, `JSON Patch operation ${i}`);
    }
  });
  let doc: unknown = structuredClone(resource);
  (ops as Operation[]).forEach((op, i) => {
    try {
      doc = jsonpatch.applyOperation(doc, op, true, true, true, i).newDocument;
    } catch (e) {
      const prefix = `JSON Patch operation ${i} (${op.op} ${op.path})`;
      if (e instanceof jsonpatch.JsonPatchError) {
        // OPERATION_PATH_ILLEGAL_ARRAY_INDEX (a non-numeric token where the resource has a list)
        // depends on the resource, so it counts as "cannot apply" (422), like a missing path.
        const make = MALFORMED.has(e.name) ? badRequest : unprocessable;
        throw make(`${prefix}: ${e.name === 'TEST_OPERATION_FAILED' ? 'test failed: the value at the path differs' : e.message}`);
      }
      // TypeError: __proto__ / constructor.prototype tokens are refused by fast-json-patch.
      throw badRequest(`${prefix}: ${(e as Error).message}`);
    }
  });
  return requireResource(doc, 'JSON Patch');
}

// ---------------------------------------------------------------- FHIRPath Patch

type FhirPathOp =
  | { type: 'add'; path: string; name: string; value: PatchValue }
  | { type: 'insert'; path: string; index: number; value: PatchValue }
  | { type: 'delete'; path: string }
  | { type: 'replace'; path: string; value: PatchValue }
  | { type: 'move'; path: string; source: number; destination: number };

const PART_NAMES = new Set(['type', 'path', 'name', 'value', 'index', 'source', 'destination']);
const REQUIRED: Record<FhirPathOp['type'], string[]> = {
  add: ['name', 'value'], insert: ['value', 'index'], delete: [], replace: ['value'], move: ['source', 'destination'],
};

function stringPart(part: Record<string, unknown>, name: string): string {
  const v = part.valueString ?? part.valueCode;
  if (typeof v !== 'string' || v.trim() === '') throw badRequest(`part '${name}' must have a non-empty valueString`);
  return v;
}

function integerPart(part: Record<string, unknown>, name: string): number {
  const v = part.valueInteger ?? part.valueUnsignedInt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw badRequest(`part '${name}' must have a non-negative valueInteger`);
  return v;
}

function parseOperation(param: unknown): FhirPathOp {
  if (!isObj(param) || param.name !== 'operation') throw badRequest(`parameter must be named 'operation'`);
  if (!Array.isArray(param.part)) throw badRequest(`an operation needs a 'part' list`);
  const parts = new Map<string, Record<string, unknown>>();
  for (const part of param.part) {
    const name = isObj(part) ? part.name : undefined;
    if (!isObj(part) || typeof name !== 'string' || !PART_NAMES.has(name)) {
      throw badRequest(`unknown part '${String(name)}' (expected ${[...PART_NAMES].join(', ')})`);
    }
    if (parts.has(name)) throw badRequest(`part '${name}' is given more than once`);
    parts.set(name, part);
  }
  const typePart = parts.get('type');
  if (!typePart) throw badRequest(`part 'type' is required`);
  const type = stringPart(typePart, 'type');
  if (!(type in REQUIRED)) throw badRequest(`unknown operation type '${type}' (expected add | insert | delete | replace | move)`);
  const pathPart = parts.get('path');
  if (!pathPart) throw badRequest(`part 'path' is required`);
  const path = stringPart(pathPart, 'path');
  for (const req of REQUIRED[type as FhirPathOp['type']]) {
    if (!parts.has(req)) throw badRequest(`part '${req}' is required for '${type}'`);
  }
  const get = (n: string) => parts.get(n)!;
  const value = () => {
    const v = readValue(get('value'), `part 'value'`);
    if (!v) throw badRequest(`part 'value' has no value (value[x], part or resource)`);
    return v;
  };
  switch (type as FhirPathOp['type']) {
    case 'add': {
      const name = stringPart(get('name'), 'name');
      if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) throw badRequest(`part 'name' is not an element name: '${name}'`);
      return { type: 'add', path, name, value: value() };
    }
    case 'insert': return { type: 'insert', path, index: integerPart(get('index'), 'index'), value: value() };
    case 'delete': return { type: 'delete', path };
    case 'replace': return { type: 'replace', path, value: value() };
    case 'move': return {
      type: 'move', path, source: integerPart(get('source'), 'source'), destination: integerPart(get('destination'), 'destination'),
    };
  }
}

/** Apply a FHIRPath Patch (a Parameters resource with 'operation' parameters) per hl7.org/fhir/R4/fhirpatch.html. */
export function applyFhirPathPatch(resource: Resource, parameters: unknown): Resource {
  if (!isObj(parameters) || parameters.resourceType !== 'Parameters') {
    throw badRequest('a FHIRPath Patch document must be a Parameters resource');
  }
  const params = parameters.parameter ?? [];
  if (!Array.isArray(params)) throw badRequest(`Parameters.parameter must be a list`);
  // Parse everything first: a malformed operation anywhere is a 400 even if an earlier one would fail with 422.
  const ops = params.map((p, i) => {
    try {
      return parseOperation(p);
    } catch (e) {
      throw withIndex(e, `FHIRPath Patch operation ${i}`, `Parameters.parameter[${i}]`);
    }
  });
  const doc = structuredClone(resource) as unknown as Record<string, unknown>;
  ops.forEach((op, i) => {
    try {
      switch (op.type) {
        case 'add': opAdd(doc, op.path, op.name, op.value); break;
        case 'insert': opInsert(doc, op.path, op.index, op.value); break;
        case 'delete': opDelete(doc, op.path); break;
        case 'replace': opReplace(doc, op.path, op.value); break;
        case 'move': opMove(doc, op.path, op.source, op.destination); break;
      }
    } catch (e) {
      throw withIndex(e, `FHIRPath Patch operation ${i} (${op.type} '${op.path}')`, `Parameters.parameter[${i}]`);
    }
    prune(doc);
  });
  return requireResource(doc, 'FHIRPath Patch');
}
