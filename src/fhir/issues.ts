/**
 * Collecting validation issues, and turning ajv's schema errors into FHIR-worded issues with
 * FHIRPath-like expressions ('Patient.name[0].given'), as clients expect in an OperationOutcome.
 */
import type { ErrorObject } from 'ajv';
import type { Issue, IssueCode } from './outcome.js';
import { elementInfo } from './definitions.js';
import { capitalise } from './element-model.js';

/** Past this many, issues are only counted: a badly broken resource would otherwise produce a huge OperationOutcome. */
const MAX_ISSUES = 50;

export class Issues {
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
export function expressionOf(prefix: string, segs: readonly (string | number)[]): string {
  let s = prefix;
  for (const seg of segs) s += typeof seg === 'number' ? `[${seg}]` : `.${seg}`;
  return s;
}

export function describe(value: unknown): string {
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

export function schemaIssue(err: ErrorObject, type: string, resource: unknown, prefix: string, issues: Issues): void {
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
