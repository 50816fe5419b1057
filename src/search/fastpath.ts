/**
 * A direct JSON walker for the simple FHIRPath expressions most search parameters use
 * (`Patient.name`, `Observation.component.value.ofType(Quantity)`,
 * `Patient.telecom.where(system='phone')`, `(X.value as Quantity)`). It returns the same values,
 * with the same FHIR types, as fhirpath.js evaluating the expression against the R4 model, at a
 * fraction of the cost; anything outside the subset below is left to fhirpath.js.
 *
 * Subset: Base ('.' step)*, where step is an element name, `ofType(T)`, or `where(e = 'literal')`
 * with e a single primitive child; a parenthesised prefix, optionally `(path as T)`, may be followed
 * by more steps. Every element on the way must be known to the R4 model.
 */
import r4 from 'fhirpath/fhir-context/r4';

/** A value selected by a search parameter expression, with its FHIR type name when known. */
export interface TypedValue {
  value: unknown;
  /** FHIR type ('HumanName', 'dateTime', 'string', ...); System.* types are mapped to FHIR primitive names. */
  type: string | undefined;
}

type Step =
  | { kind: 'child'; name: string }
  | { kind: 'ofType'; type: string }
  | { kind: 'whereEq'; field: string; literal: string };

interface ChildSlot {
  /** JSON property name (value[x] expanded, e.g. valueQuantity). */
  prop: string;
  type: string;
  /** Model path used to look up the children of this value. */
  path: string;
}

interface CompiledStep {
  kind: Step['kind'];
  /** child: slots by parent model path. */
  slots?: Map<string, ChildSlot[]>;
  type?: string;
  field?: string;
  literal?: string;
}

const SYSTEM_TYPES: Record<string, string> = {
  'System.String': 'string',
  'System.Boolean': 'boolean',
  'System.Integer': 'integer',
  'System.Decimal': 'decimal',
  'System.Date': 'date',
  'System.DateTime': 'dateTime',
  'System.Time': 'time',
  'System.Quantity': 'Quantity',
};

/** Map fhirpath.js type names (FHIR.x, System.X) onto FHIR type names. */
export function normalizeTypeName(t: string | null | undefined): string | undefined {
  if (!t) return undefined;
  if (t.startsWith('FHIR.')) return t.slice(5);
  return SYSTEM_TYPES[t] ?? t;
}

const PRIMITIVE_TYPES = new Set([
  'boolean', 'integer', 'integer64', 'string', 'decimal', 'uri', 'url', 'canonical', 'base64Binary', 'instant', 'date',
  'dateTime', 'time', 'code', 'oid', 'id', 'markdown', 'unsignedInt', 'positiveInt', 'uuid', 'xhtml',
]);

export function isPrimitiveType(t: string | undefined): boolean {
  return t !== undefined && PRIMITIVE_TYPES.has(t);
}

/** True when `type` is `target` or derives from it in the R4 model (Age → Quantity). */
export function isTypeOrSubtype(type: string | undefined, target: string): boolean {
  let t = type;
  for (let i = 0; t && i < 10; i++) {
    if (t === target) return true;
    t = r4.type2Parent[t];
  }
  return false;
}

const slotCache = new Map<string, ChildSlot[] | null>();

function normalizeModelPath(p: string): string {
  return r4.pathsDefinedElsewhere[p] ?? p;
}

/** The JSON properties (and their types) of element `name` under model path `parent`; null if unknown. */
function childSlots(parent: string, name: string): ChildSlot[] | null {
  const key = parent + '.' + name;
  const cached = slotCache.get(key);
  if (cached !== undefined) return cached;
  const p = normalizeModelPath(key);
  let slots: ChildSlot[] | null = null;
  const choices = r4.choiceTypePaths[p];
  if (choices) {
    slots = choices.map((suffix) => {
      const type =
        normalizeTypeName(r4.path2Type[p + suffix]) ??
        (PRIMITIVE_TYPES.has(suffix[0]!.toLowerCase() + suffix.slice(1)) ? suffix[0]!.toLowerCase() + suffix.slice(1) : suffix);
      return { prop: name + suffix, type, path: type };
    });
  } else {
    const t = normalizeTypeName(r4.path2Type[p]);
    if (t !== undefined && t !== 'Resource' && t !== 'DomainResource') {
      slots = [{ prop: name, type: t, path: t === 'BackboneElement' || t === 'Element' ? p : t }];
    }
  }
  slotCache.set(key, slots);
  return slots;
}

// ---------------------------------------------------------------------------------------------
// Parsing the subset

type Token = { t: 'id' | 'str' | 'punct'; v: string };

function tokenize(expr: string): Token[] | undefined {
  const out: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < expr.length && /[A-Za-z0-9_]/.test(expr[j]!)) j++;
      out.push({ t: 'id', v: expr.slice(i, j) });
      i = j;
    } else if (c === "'") {
      const j = expr.indexOf("'", i + 1);
      if (j < 0) return undefined;
      const s = expr.slice(i + 1, j);
      if (s.includes('\\')) return undefined;
      out.push({ t: 'str', v: s });
      i = j + 1;
    } else if (c === '.' || c === '(' || c === ')' || c === '=') {
      out.push({ t: 'punct', v: c });
      i++;
    } else {
      return undefined;
    }
  }
  return out;
}

/** Parse `expr` into steps relative to a resource of type `base`; undefined when outside the subset. */
export function parseSimplePath(expr: string, base: string): Step[] | undefined {
  const toks = tokenize(expr);
  if (!toks) return undefined;
  let pos = 0;
  const peek = (k = 0) => toks[pos + k];
  const isP = (tok: Token | undefined, v: string) => tok?.t === 'punct' && tok.v === v;
  const fail = Symbol('fail');

  function path(): Step[] {
    let steps: Step[];
    const tok = peek();
    if (isP(tok, '(')) {
      pos++;
      steps = path();
      if (peek()?.t === 'id' && peek()!.v === 'as') {
        pos++;
        const t = peek();
        if (t?.t !== 'id') throw fail;
        pos++;
        steps.push({ kind: 'ofType', type: t.v });
      }
      if (!isP(peek(), ')')) throw fail;
      pos++;
    } else if (tok?.t === 'id' && tok.v === base) {
      pos++;
      steps = [];
    } else {
      throw fail;
    }
    while (isP(peek(), '.')) {
      pos++;
      const name = peek();
      if (name?.t !== 'id') throw fail;
      pos++;
      if (!isP(peek(), '(')) {
        steps.push({ kind: 'child', name: name.v });
        continue;
      }
      pos++;
      if (name.v === 'ofType') {
        const t = peek();
        if (t?.t !== 'id' || !isP(peek(1), ')')) throw fail;
        pos += 2;
        steps.push({ kind: 'ofType', type: t.v });
      } else if (name.v === 'where') {
        const f = peek();
        const lit = peek(2);
        if (f?.t !== 'id' || !isP(peek(1), '=') || lit?.t !== 'str' || !isP(peek(3), ')')) throw fail;
        pos += 4;
        steps.push({ kind: 'whereEq', field: f.v, literal: lit.v });
      } else {
        throw fail;
      }
    }
    return steps;
  }

  try {
    const steps = path();
    return pos === toks.length ? steps : undefined;
  } catch (e) {
    if (e === fail) return undefined;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Compiling against the model and walking

/** Evaluates a compiled path; `into` appends the values to `out` instead of allocating an array. */
export interface SimplePathEvaluator {
  (resource: unknown): TypedValue[];
  into(resource: unknown, out: TypedValue[]): void;
}

/** Compile `expr` for resources of type `base`, or undefined when it must be left to fhirpath.js. */
export function compileSimplePath(expr: string, base: string): SimplePathEvaluator | undefined {
  const steps = parseSimplePath(expr, base);
  if (!steps || steps.length === 0) return undefined;
  // Statically follow every model path reachable at each step.
  let paths: Array<{ path: string; type: string }> = [{ path: base, type: base }];
  const compiled: CompiledStep[] = [];
  for (const step of steps) {
    if (step.kind === 'child') {
      const slots = new Map<string, ChildSlot[]>();
      const next: Array<{ path: string; type: string }> = [];
      for (const p of paths) {
        if (slots.has(p.path)) continue;
        if (isPrimitiveType(p.type)) return undefined; // children of primitives (id, extension): leave to fhirpath
        const s = childSlots(p.path, step.name);
        if (!s) return undefined;
        slots.set(p.path, s);
        for (const slot of s) next.push({ path: slot.path, type: slot.type });
      }
      paths = next;
      compiled.push({ kind: 'child', slots });
    } else if (step.kind === 'ofType') {
      paths = paths.filter((p) => isTypeOrSubtype(p.type, step.type));
      compiled.push({ kind: 'ofType', type: step.type });
    } else {
      for (const p of paths) {
        const s = childSlots(p.path, step.field);
        if (!s || s.length !== 1 || r4.path2Repeating[normalizeModelPath(p.path + '.' + step.field)]) return undefined;
        const t = s[0]!.type;
        if (!['code', 'string', 'uri', 'id'].includes(t)) return undefined;
      }
      compiled.push({ kind: 'whereEq', field: step.field, literal: step.literal });
    }
  }
  const into: Visit = visitor(compiled, 0, base, base) ?? (() => undefined);
  const evaluate = ((resource: unknown) => {
    const out: TypedValue[] = [];
    into(resource, out);
    return out;
  }) as SimplePathEvaluator;
  evaluate.into = into;
  return evaluate;
}

/** Appends the values selected below `value` to `out`. */
type Visit = (value: unknown, out: TypedValue[]) => void;

/**
 * The walk from step k on, for a value at model path `path` of FHIR type `type`, as a tree of
 * closures built once: the model path and type of every value are known statically, so slot
 * lookups and ofType() are resolved here, and the walk is a depth-first descent that allocates
 * only the results (depth-first order of the leaves is the order a level-by-level walk gives).
 * Undefined when nothing can be selected from there.
 */
function visitor(steps: CompiledStep[], k: number, path: string, type: string): Visit | undefined {
  if (k === steps.length) {
    return (value, out) => {
      out.push({ value, type });
    };
  }
  const step = steps[k]!;
  if (step.kind === 'ofType') return isTypeOrSubtype(type, step.type!) ? visitor(steps, k + 1, path, type) : undefined;
  if (step.kind === 'whereEq') {
    const next = visitor(steps, k + 1, path, type);
    if (!next) return undefined;
    const field = step.field!;
    const literal = step.literal!;
    return (value, out) => {
      let v = (value as Record<string, unknown>)[field];
      if (Array.isArray(v)) v = v.length === 1 ? v[0] : undefined;
      if (v === literal) next(value, out);
    };
  }
  const props: string[] = [];
  const nexts: Visit[] = [];
  for (const slot of step.slots!.get(path) ?? []) {
    const next = visitor(steps, k + 1, slot.path, slot.type);
    if (next) {
      props.push(slot.prop);
      nexts.push(next);
    }
  }
  if (props.length === 0) return undefined;
  if (props.length === 1) {
    const prop = props[0]!;
    const next = nexts[0]!;
    return (value, out) => {
      if (value === null || typeof value !== 'object') return;
      childValues((value as Record<string, unknown>)[prop], next, out);
    };
  }
  return (value, out) => {
    if (value === null || typeof value !== 'object') return;
    for (let i = 0; i < props.length; i++) childValues((value as Record<string, unknown>)[props[i]!], nexts[i]!, out);
  };
}

/** Visit a JSON property's value: each non-null element of an array, else the value itself. */
function childValues(v: unknown, next: Visit, out: TypedValue[]): void {
  if (v === undefined || v === null) return;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const e: unknown = v[i];
      if (e !== null && e !== undefined) next(e, out);
    }
  } else {
    next(v, out);
  }
}

// ---------------------------------------------------------------------------------------------
// Expressions left to fhirpath.js that read a few elements only

/** Functions that read nothing but their input collection. */
const PURE_FUNCTIONS = new Set(['exists', 'empty', 'not']);
const KEYWORDS = new Set(['and', 'or', 'true', 'false']);

/**
 * The JSON properties of a `base` resource that `expr` can read, when it only navigates from
 * `base` (`Patient.deceased.exists() and Patient.deceased != false`): where none of them is
 * present, the expression gives what it gives on a bare `{ resourceType }`. Undefined when that
 * cannot be told from the text (variables, indexers, functions with arguments or bare names).
 */
export function rootPropertiesRead(expr: string, base: string): string[] | undefined {
  if (/[%$[`]/.test(expr)) return undefined;
  const text = expr.replace(/'(?:[^'\\]|\\.)*'/g, "''"); // string literals hold no names
  const props = new Set<string>();
  const ident = /[A-Za-z_][A-Za-z0-9_]*/g;
  for (let m = ident.exec(text); m; m = ident.exec(text)) {
    const name = m[0];
    const before = text.slice(0, m.index).trimEnd();
    const after = text.slice(m.index + name.length).trimStart();
    if (before.endsWith('.')) {
      // a step below something else, or a function on it
      if (after.startsWith('(')) {
        if (!PURE_FUNCTIONS.has(name) || !/^\(\s*\)/.test(after)) return undefined;
      } else if (new RegExp(`(?:^|[^.\\w])${base}\\s*\\.$`).test(before)) {
        const slots = childSlots(base, name);
        if (!slots) return undefined;
        for (const s of slots) props.add(s.prop).add('_' + s.prop);
      }
    } else if (name === base) {
      if (!after.startsWith('.')) return undefined;
    } else if (!KEYWORDS.has(name)) {
      return undefined;
    }
  }
  return props.size > 0 ? [...props] : undefined;
}
