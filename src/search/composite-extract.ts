/**
 * Index rows of composite parameters (composite.ts): for each element the composite's expression
 * selects (the resource itself for a branch that is just the type name), each component's
 * expression is evaluated relative to that element, its values turned into the rows its own type
 * would give (extract.ts conventions), and every combination of one value per component becomes one
 * sp_composite row [c1_a, c1_b, c1_c, c1_lo, c1_hi, c2_..., c3_...] (schema.ts), with
 *   token [system, code, display], quantity [system, code, unit, lo, hi], number [-, -, -, lo, hi],
 *   date [-, -, -, lo, hi] in epoch milliseconds, string [norm, exact], reference [type, id, url],
 *   uri [value].
 * A CodeableConcept's text alone gives no token component value (a composite is searched by code).
 *
 * Component expressions are compiled once per parameter with the fast path walker (fastpath.ts),
 * as `<element path>.<expression>` applied to a minimal wrapper around the element, so nothing
 * goes through fhirpath.js for the R4 core composites; expressions outside its subset fall back to
 * fhirpath.js on the same wrapper.
 */
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { Resource } from 'fhir/r4.js';
import { compositeSpec, type ComponentSpec } from './composite.js';
import { extractParamRows, type IndexRow } from './extract.js';
import { compileSimplePath, normalizeTypeName, type TypedValue } from './fastpath.js';
import { searchParamsFor, splitUnion, type SearchParamDef } from './parameters.js';
import { ownsRows, type SearchRegistry } from './registry.js';
import { epochMs } from './sql-conditions.js';

/** Most rows one element may contribute (combinations of component values). */
const MAX_COMBINATIONS = 64;
const COLUMNS_PER_COMPONENT = 5;
const WIDTH = 3 * COLUMNS_PER_COMPONENT;

type Evaluator = (input: unknown) => TypedValue[];
type Slots = (string | number | null)[];

interface CompiledComposite {
  code: string;
  specs: ComponentSpec[];
  /** Component expressions starting with %resource: evaluated on the resource, not the element. */
  fromResource: boolean[];
  /**
   * Per branch of the expression: the elements it selects, how to wrap one so that
   * `<branch path>.<component expression>` selects the component values of that element only, and
   * those compiled component expressions.
   */
  branches: Array<{ select: Evaluator; wrap: (resource: Resource, element: unknown) => unknown; components: Evaluator[] }>;
}

/** FHIRPath System type names used with ofType() in some R4 expressions (`value.ofType(DateTime)`). */
const SYSTEM_OF_TYPE = /ofType\((DateTime|Date|String|Boolean|Integer|Decimal|Time)\)/g;

/** Compiled expressions, shared by the composites that use the same one (Observation.code...). */
const compiledExpressions = new Map<string, Evaluator>();

function compile(expression: string, base: string): Evaluator {
  const key = `${base}\u0000${expression}`;
  let e = compiledExpressions.get(key);
  if (!e) compiledExpressions.set(key, (e = compileUncached(expression, base)));
  return e;
}

function compileUncached(expression: string, base: string): Evaluator {
  const expr = expression.replace(SYSTEM_OF_TYPE, (_, t: string) => `ofType(${t[0]!.toLowerCase()}${t.slice(1)})`);
  const branches = splitUnion(expr).map((b): Evaluator => {
    const fast = compileSimplePath(b, base);
    if (fast) return fast;
    const fn = fhirpath.compile(b, r4, { resolveInternalTypes: false }) as (r: unknown) => unknown[];
    return (input) => {
      const out: TypedValue[] = [];
      try {
        for (const n of fn(input)) {
          if (n !== null && typeof n === 'object' && 'data' in n) {
            const node = n as { data: unknown; fhirNodeDataType?: string | null };
            if (node.data !== null && node.data !== undefined) out.push({ value: node.data, type: normalizeTypeName(node.fhirNodeDataType) });
          } else if (n !== null && n !== undefined) out.push({ value: n, type: undefined });
        }
      } catch {
        // an expression fhirpath.js cannot evaluate on this element: no values
      }
      return out;
    };
  });
  if (branches.length === 1) return branches[0]!;
  return (input) => branches.flatMap((b) => b(input));
}

function compileComposite(def: SearchParamDef, params: ReadonlyMap<string, SearchParamDef>): CompiledComposite | undefined {
  const spec = compositeSpec(def, params);
  if (!spec) return undefined;
  const base = def.base;
  const fromResource = spec.components.map((c) => c.expression.startsWith('%resource.'));
  return {
    code: def.code,
    specs: spec.components,
    fromResource,
    branches: spec.branches.map((path) => {
      const steps = path.split('.').slice(1);
      const components = spec.components.map((c, i) =>
        compile(
          splitUnion(c.expression)
            .map((e) => (fromResource[i] ? `${base}.${e.slice('%resource.'.length)}` : `${path}.${e}`))
            .join(' | '),
          base,
        ),
      );
      if (steps.length === 0) return { select: (r: unknown) => [{ value: r, type: base }], wrap: (_r: Resource, e: unknown) => e, components };
      return {
        select: compile(path, base),
        // { resourceType, a: { b: element } } for the path Base.a.b
        wrap: (r: Resource, e: unknown) => {
          let w: unknown = e;
          for (let i = steps.length - 1; i >= 1; i--) w = { [steps[i]!]: w };
          return { resourceType: r.resourceType, [steps[0]!]: w };
        },
        components,
      };
    }),
  };
}

const compiledCache = new WeakMap<ReadonlyMap<string, SearchParamDef>, CompiledComposite[]>();

function compositesOf(params: ReadonlyMap<string, SearchParamDef>): CompiledComposite[] {
  let list = compiledCache.get(params);
  if (!list) {
    list = [];
    for (const def of params.values()) {
      if (def.type !== 'composite' || !ownsRows(params, def.code)) continue;
      const compiled = compileComposite(def, params);
      if (compiled) list.push(compiled);
    }
    compiledCache.set(params, list);
  }
  return list;
}

/** The slots [a, b, c, lo, hi] of one index row of a component's own type (see the header). */
function slotsOf(row: IndexRow, spec: ComponentSpec): Slots | undefined {
  if (row.param !== '') return undefined; // e.g. ':identifier', ':canonical' rows
  const v = row.values;
  switch (row.table) {
    case 'sp_token':
      return spec.type === 'token' && v[1] !== null ? [v[0]!, v[1]!, v[2]!, null, null] : undefined;
    case 'sp_quantity':
      return [v[0]!, v[1]!, v[2]!, v[3]!, v[4]!];
    case 'sp_number':
      return [null, null, null, v[0]!, v[1]!];
    case 'sp_date':
      return [null, null, null, epochMs(String(v[0])), epochMs(String(v[1]))];
    case 'sp_string':
      return [v[0]!, v[1]!, null, null, null];
    case 'sp_reference':
      return spec.type === 'reference' ? [v[0]!, v[1]!, v[3]!, null, null] : undefined;
    case 'sp_uri':
      return [v[0]!, null, null, null, null];
    default:
      return undefined;
  }
}

/** A stand-in parameter definition per component type, handing extractParamRows the values it is given. */
const pseudoDefs = new Map<string, { code: string; type: string; values: TypedValue[]; evaluateTyped(): TypedValue[] }>();

function slotsOfValues(spec: ComponentSpec, values: TypedValue[]): Slots[] {
  let def = pseudoDefs.get(spec.type);
  if (!def) {
    def = { code: '', type: spec.type, values: [], evaluateTyped() { return this.values; } };
    pseudoDefs.set(spec.type, def);
  }
  def.values = values;
  const out: Slots[] = [];
  for (const row of extractParamRows(undefined as unknown as Resource, def as unknown as SearchParamDef)) {
    const s = slotsOf(row, spec);
    if (s) out.push(s);
  }
  def.values = [];
  return out;
}

/**
 * Values already computed for this resource, by evaluator and input element: the elements a
 * branch selects, and component values with their slots (the code of an Observation is a
 * component of four composites, Observation.component the base of four). Per evaluator, a short
 * list searched by identity: one entry per element, and a resource has few elements per path.
 */
interface Evaluated {
  key: unknown;
  values: TypedValue[];
  /** The slots of the values as components of type slotType (nearly always the only type asked for). */
  slotType?: string;
  slots?: Slots[];
  otherSlots?: Map<string, Slots[]>;
}
type Memo = Map<Evaluator, Evaluated[]>;

function memoized(memo: Memo, evaluate: Evaluator, key: unknown): Evaluated | undefined {
  const list = memo.get(evaluate);
  if (list) for (let i = 0; i < list.length; i++) if (list[i]!.key === key) return list[i]!;
  return undefined;
}

function remember(memo: Memo, evaluate: Evaluator, key: unknown, values: TypedValue[]): Evaluated {
  const e: Evaluated = { key, values };
  const list = memo.get(evaluate);
  if (list) list.push(e);
  else memo.set(evaluate, [e]);
  return e;
}

function slotsFor(e: Evaluated, spec: ComponentSpec): Slots[] {
  if (e.slotType === spec.type) return e.slots!;
  if (e.slotType === undefined) {
    e.slotType = spec.type;
    return (e.slots = slotsOfValues(spec, e.values));
  }
  e.otherSlots ??= new Map();
  let slots = e.otherSlots.get(spec.type);
  if (!slots) e.otherSlots.set(spec.type, (slots = slotsOfValues(spec, e.values)));
  return slots;
}

function rowsOf(resource: Resource, compiled: CompiledComposite, out: IndexRow[], memo: Memo): void {
  const n = compiled.specs.length;
  for (const branch of compiled.branches) {
    const elements = (memoized(memo, branch.select, resource) ?? remember(memo, branch.select, resource, branch.select(resource))).values;
    for (const element of elements) {
      let wrapper: unknown;
      // all components first: most elements lack one of them (a value of another type)
      let found: Evaluated[] | undefined;
      for (let k = 0; k < n; k++) {
        const evaluate = branch.components[k]!;
        const fromResource = compiled.fromResource[k]!;
        const key = fromResource ? resource : element.value;
        let e = memoized(memo, evaluate, key);
        if (!e) e = remember(memo, evaluate, key, evaluate(fromResource ? resource : (wrapper ??= branch.wrap(resource, element.value))));
        if (e.values.length === 0) break;
        (found ??= []).push(e);
      }
      if (found === undefined || found.length < n) continue;
      const slotLists: Slots[][] = [];
      for (let k = 0; k < n; k++) slotLists.push(slotsFor(found[k]!, compiled.specs[k]!));
      combinations(compiled.code, slotLists, out);
    }
  }
}

/**
 * One row per combination of one slot group per component, in order (the first component varies
 * slowest), at most MAX_COMBINATIONS; unused components' columns are null.
 */
function combinations(code: string, slotLists: Slots[][], out: IndexRow[]): void {
  const n = slotLists.length;
  for (let k = 0; k < n; k++) if (slotLists[k]!.length === 0) return;
  const at = new Array<number>(n).fill(0);
  for (let count = 0; count < MAX_COMBINATIONS; count++) {
    const values: Slots = [];
    for (let k = 0; k < n; k++) {
      const slots = slotLists[k]![at[k]!]!;
      for (let j = 0; j < slots.length; j++) values.push(slots[j]!);
    }
    while (values.length < WIDTH) values.push(null);
    out.push({ table: 'sp_composite', param: code, values });
    // next combination: advance the last component, carrying into earlier ones
    let k = n - 1;
    while (k >= 0 && ++at[k]! === slotLists[k]!.length) at[k--] = 0;
    if (k < 0) return;
  }
}

/** The sp_composite rows of `resource` (all composite parameters of its type). */
export function compositeIndexRows(resource: Resource, registry?: SearchRegistry): IndexRow[] {
  const params = registry ? registry.paramsFor(resource.resourceType) : searchParamsFor(resource.resourceType);
  const out: IndexRow[] = [];
  const composites = compositesOf(params);
  if (composites.length === 0) return out;
  const memo: Memo = new Map();
  for (const c of composites) rowsOf(resource, c, out, memo);
  return out;
}

/** The sp_composite rows of one composite parameter (re-indexing a single parameter). */
export function compositeParamRows(resource: Resource, def: SearchParamDef, params: ReadonlyMap<string, SearchParamDef>): IndexRow[] {
  const compiled = compileComposite(def, params);
  const out: IndexRow[] = [];
  if (compiled) rowsOf(resource, compiled, out, new Map());
  return out;
}
