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

/** repsAt(seg, path)[0] without reading the other repetitions (most rules map the first only). */
export function firstRepAt(seg: Segment | undefined, path: FieldPath): Rep | undefined {
  const rep = seg?.fields[path.field]?.[0];
  if (rep === undefined || path.component === undefined) return rep;
  return path.subcomponent === undefined ? subRep(rep, path.component) : [[comp(rep, path.component, path.subcomponent)]];
}

/** The trimmed first text at a path: what conditions and stable-id keys compare. */
export function firstTextAt(seg: Segment | undefined, path: FieldPath): string {
  const rep = seg?.fields[path.field]?.[0];
  // = comp(firstRepAt(seg, path), 1), without building the component's repetition.
  return (path.component === undefined ? comp(rep, 1) : comp(rep, path.component, path.subcomponent ?? 1)).trim();
}

/** Whether anything is valued at a path's first repetition (= isValued(firstRepAt(seg, path))). */
export function valuedAt(seg: Segment | undefined, path: FieldPath): boolean {
  const rep = seg?.fields[path.field]?.[0];
  if (rep === undefined) return false;
  if (path.component === undefined) return isValued(rep);
  if (path.subcomponent === undefined) return (rep[path.component - 1] ?? []).some((s) => s !== '');
  return comp(rep, path.component, path.subcomponent) !== '';
}

/** A condition compiled once per mapping: field paths parsed, checks in the order the condition lists them. */
export type CompiledCondition = (scope: Scope) => boolean;

export function compileCondition(cond: Condition): CompiledCondition {
  const checks: CompiledCondition[] = [];
  const at = (path: string) => parseFieldPath(path);
  if (cond.valued !== undefined) {
    const p = at(cond.valued);
    checks.push((scope) => valuedAt(scope.get(p.segment), p));
  }
  if (cond.notValued !== undefined) {
    const p = at(cond.notValued);
    checks.push((scope) => !valuedAt(scope.get(p.segment), p));
  }
  if (cond.equals) {
    const [p, v] = [at(cond.equals[0]), cond.equals[1]];
    checks.push((scope) => firstTextAt(scope.get(p.segment), p) === v);
  }
  if (cond.notEquals) {
    const [p, v] = [at(cond.notEquals[0]), cond.notEquals[1]];
    checks.push((scope) => firstTextAt(scope.get(p.segment), p) !== v);
  }
  if (cond.in) {
    const [p, values] = [at(cond.in[0]), cond.in[1]];
    checks.push((scope) => values.includes(firstTextAt(scope.get(p.segment), p)));
  }
  if (cond.notIn) {
    const [p, values] = [at(cond.notIn[0]), cond.notIn[1]];
    checks.push((scope) => !values.includes(firstTextAt(scope.get(p.segment), p)));
  }
  if (cond.longerThan) {
    const [p, n] = [at(cond.longerThan[0]), cond.longerThan[1]];
    checks.push((scope) => firstTextAt(scope.get(p.segment), p).length > n);
  }
  if (cond.all) {
    const all = cond.all.map(compileCondition);
    checks.push((scope) => all.every((c) => c(scope)));
  }
  if (cond.any) {
    const any = cond.any.map(compileCondition);
    checks.push((scope) => any.some((c) => c(scope)));
  }
  if (cond.not) {
    const not = compileCondition(cond.not);
    checks.push((scope) => !not(scope));
  }
  if (checks.length === 1) return checks[0]!;
  return (scope) => {
    for (const check of checks) if (!check(scope)) return false;
    return true;
  };
}

// ---------------------------------------------------------------------------------------------
// FHIR target paths

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Typed);

export interface Step {
  key: string;
  /** 'append' for 'x[]', a number for 'x[2]', undefined for 'x'. */
  index?: 'append' | number;
  /** 'value' for 'value[x]': the element name is this plus the Typed value's type. */
  choice?: string;
}

const targetPaths = new Map<string, Step[]>();

/** A target path parsed once (mappings are compiled at start-up; the map is a cache for the rest). */
export function targetSteps(path: string): Step[] {
  let parsed = targetPaths.get(path);
  if (!parsed) {
    parsed = path.split('.').map((part) => {
      const m = /^([A-Za-z_][A-Za-z0-9_]*(?:\[x\])?)(?:\[(\d*)\])?$/.exec(part);
      if (!m) throw new Error(`HL7 v2 mappings: invalid target path '${path}'`);
      const key = m[1]!;
      return { key, index: m[2] === undefined ? undefined : m[2] === '' ? 'append' : Number(m[2]), choice: key.endsWith('[x]') ? key.slice(0, -3) : undefined };
    });
    targetPaths.set(path, parsed);
  }
  return parsed;
}

/** Whether something is already at a parsed target path (no appends in it). */
export function hasAt(root: Obj, steps: Step[]): boolean {
  let node: unknown = root;
  for (const step of steps) {
    if (!isObject(node)) return false;
    node = node[step.key];
    if (typeof step.index === 'number') node = Array.isArray(node) ? node[step.index] : undefined;
  }
  return node !== undefined;
}

/**
 * Set a value at a parsed target path. 'x[]' appends (a new element when in the middle of the path),
 * 'x' sets (merging into an existing object when both are objects), 'value[x]' takes the name of
 * a Typed value's type (valueQuantity, valueString…). The steps are parsed (targetSteps);
 * `path` only names them in errors.
 */
export function setAt(root: Obj, steps: Step[], value: unknown, path: string): void {
  let node: Obj = root;
  const lastIndex = steps.length - 1;
  for (let i = 0; i < lastIndex; i++) {
    const step = steps[i]!;
    const key = step.key;
    if (step.index === undefined) {
      if (!isObject(node[key])) node[key] = {};
      node = node[key] as Obj;
      continue;
    }
    if (!Array.isArray(node[key])) node[key] = [];
    const list = node[key] as unknown[];
    if (step.index === 'append') {
      const child: Obj = {};
      list.push(child);
      node = child;
    } else {
      if (!isObject(list[step.index])) list[step.index] = {};
      node = list[step.index] as Obj;
    }
  }
  const step = steps[lastIndex]!;
  let key = step.key;
  let v = value;
  if (step.choice !== undefined) {
    if (!(value instanceof Typed)) throw new Error(`HL7 v2 mappings: ${path} needs a value with a data type`);
    key = step.choice + value.type[0]!.toUpperCase() + value.type.slice(1);
    v = value.value;
  } else if (value instanceof Typed) {
    v = value.value;
  }
  if (step.index === undefined) {
    const existing = node[key];
    node[key] = isObject(existing) && isObject(v) ? { ...existing, ...v } : v;
    return;
  }
  if (!Array.isArray(node[key])) node[key] = [];
  const list = node[key] as unknown[];
  if (step.index === 'append') list.push(v);
  else list[step.index] = isObject(list[step.index]) && isObject(v) ? { ...(list[step.index] as Obj), ...v } : v;
}

/** Replace every "$value" string in a template by the value. */
function substitute(template: unknown, value: unknown): unknown {
  if (template === '$value') return value instanceof Typed ? value.value : value;
  if (Array.isArray(template)) return template.map((t) => substitute(t, value));
  if (isObject(template)) return Object.fromEntries(Object.entries(template).map(([k, t]) => [k, substitute(t, value)]));
  return template;
}

/** substitute(template, value) as a function of the value: the template walked once, fresh objects on every call. */
export function compileTemplate(template: unknown): (value: unknown) => unknown {
  if (template === '$value') return (value) => (value instanceof Typed ? value.value : value);
  if (Array.isArray(template)) {
    const items = template.map(compileTemplate);
    return (value) => items.map((item) => item(value));
  }
  if (isObject(template)) {
    const keys = Object.keys(template);
    // A '__proto__' key (JSON.parse keeps it as data) must be defined, not assigned.
    if (keys.includes('__proto__')) return (value) => substitute(template, value);
    const parts = keys.map((k) => compileTemplate(template[k]));
    return (value) => {
      const out: Obj = {};
      for (let i = 0; i < keys.length; i++) out[keys[i]!] = parts[i]!(value);
      return out;
    };
  }
  return () => template;
}

export { isObject };
