/**
 * The small path languages of the mappings: v2 field paths ('PID-3', 'PV1-2.1', 'CX-4.1.2'),
 * conditions over them, and FHIR target paths ('identifier[]', 'period.start', 'value[x]').
 */
import type { Condition } from './mapping-config.js';
import { comp, isValued, subRep, type Rep, type Segment } from './parser.js';
import { Typed } from './convert-context.js';

export interface FieldPath {
  segment: string;
  field: number;
  component?: number;
  subcomponent?: number;
}

const fieldPaths = new Map<string, FieldPath>();

export function parseFieldPath(path: string): FieldPath {
  let parsed = fieldPaths.get(path);
  if (!parsed) {
    const m = /^([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(path);
    if (!m) throw new Error(`HL7 v2 mappings: invalid field path '${path}'`);
    parsed = { segment: m[1]!, field: Number(m[2]), component: m[3] ? Number(m[3]) : undefined, subcomponent: m[4] ? Number(m[4]) : undefined };
    fieldPaths.set(path, parsed);
  }
  return parsed;
}

/** The segments a rule can read: the latest of each name (with group context applied). */
export type Scope = Map<string, Segment>;

/** The repetitions at a path; a component path gives each repetition's component read as a repetition. */
export function repsAt(seg: Segment | undefined, path: FieldPath): Rep[] {
  const field = seg?.fields[path.field] ?? [];
  if (path.component === undefined) return field;
  return field.map((rep) => (path.subcomponent === undefined ? subRep(rep, path.component!) : [[comp(rep, path.component!, path.subcomponent)]]));
}

export function firstText(scope: Scope, path: string): string {
  const p = parseFieldPath(path);
  return comp(repsAt(scope.get(p.segment), p)[0], 1).trim();
}

function valued(scope: Scope, path: string): boolean {
  const p = parseFieldPath(path);
  return isValued(repsAt(scope.get(p.segment), p)[0]);
}

export function evaluate(cond: Condition, scope: Scope): boolean {
  if (cond.valued !== undefined && !valued(scope, cond.valued)) return false;
  if (cond.notValued !== undefined && valued(scope, cond.notValued)) return false;
  if (cond.equals && firstText(scope, cond.equals[0]) !== cond.equals[1]) return false;
  if (cond.notEquals && firstText(scope, cond.notEquals[0]) === cond.notEquals[1]) return false;
  if (cond.in && !cond.in[1].includes(firstText(scope, cond.in[0]))) return false;
  if (cond.notIn && cond.notIn[1].includes(firstText(scope, cond.notIn[0]))) return false;
  if (cond.longerThan && firstText(scope, cond.longerThan[0]).length <= cond.longerThan[1]) return false;
  if (cond.all && !cond.all.every((c) => evaluate(c, scope))) return false;
  if (cond.any && !cond.any.some((c) => evaluate(c, scope))) return false;
  if (cond.not && evaluate(cond.not, scope)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// FHIR target paths

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Typed);

interface Step {
  key: string;
  /** 'append' for 'x[]', a number for 'x[2]', undefined for 'x'. */
  index?: 'append' | number;
}

const targetPaths = new Map<string, Step[]>();

function steps(path: string): Step[] {
  let parsed = targetPaths.get(path);
  if (!parsed) {
    parsed = path.split('.').map((part) => {
      const m = /^([A-Za-z_][A-Za-z0-9_]*(?:\[x\])?)(?:\[(\d*)\])?$/.exec(part);
      if (!m) throw new Error(`HL7 v2 mappings: invalid target path '${path}'`);
      return { key: m[1]!, index: m[2] === undefined ? undefined : m[2] === '' ? 'append' : Number(m[2]) };
    });
    targetPaths.set(path, parsed);
  }
  return parsed;
}

/** Whether something is already at a target path (no appends in it). */
export function hasPath(root: Obj, path: string): boolean {
  let node: unknown = root;
  for (const step of steps(path)) {
    if (!isObject(node)) return false;
    node = node[step.key];
    if (typeof step.index === 'number') node = Array.isArray(node) ? node[step.index] : undefined;
  }
  return node !== undefined;
}

/**
 * Set a value at a target path. 'x[]' appends (a new element when in the middle of the path),
 * 'x' sets (merging into an existing object when both are objects), 'value[x]' takes the name of
 * a Typed value's type (valueQuantity, valueString…).
 */
export function setPath(root: Obj, path: string, value: unknown): void {
  const all = steps(path);
  let node: Obj = root;
  for (let i = 0; i < all.length; i++) {
    const step = all[i]!;
    const last = i === all.length - 1;
    let key = step.key;
    let v = value;
    if (last && key.endsWith('[x]')) {
      if (!(value instanceof Typed)) throw new Error(`HL7 v2 mappings: ${path} needs a value with a data type`);
      key = key.slice(0, -3) + value.type[0]!.toUpperCase() + value.type.slice(1);
      v = value.value;
    } else if (value instanceof Typed && last) {
      v = value.value;
    }
    if (step.index === undefined) {
      if (last) {
        const existing = node[key];
        node[key] = isObject(existing) && isObject(v) ? { ...existing, ...v } : v;
        return;
      }
      if (!isObject(node[key])) node[key] = {};
      node = node[key] as Obj;
      continue;
    }
    if (!Array.isArray(node[key])) node[key] = [];
    const list = node[key] as unknown[];
    if (last) {
      if (step.index === 'append') list.push(v);
      else list[step.index] = isObject(list[step.index]) && isObject(v) ? { ...(list[step.index] as Obj), ...v } : v;
      return;
    }
    if (step.index === 'append') {
      const child: Obj = {};
      list.push(child);
      node = child;
    } else {
      if (!isObject(list[step.index])) list[step.index] = {};
      node = list[step.index] as Obj;
    }
  }
}

/** Replace every "$value" string in a template by the value. */
export function substitute(template: unknown, value: unknown): unknown {
  if (template === '$value') return value instanceof Typed ? value.value : value;
  if (Array.isArray(template)) return template.map((t) => substitute(t, value));
  if (isObject(template)) return Object.fromEntries(Object.entries(template).map(([k, t]) => [k, substitute(t, value)]));
  return template;
}

export { isObject };
