/**
 * Composite search parameters (search.html#composite): `code-value-quantity=http://loinc.org|8480-6$lt60`.
 * The value has one part per component, separated by `$`; a resource matches when one element
 * selected by the parameter's expression (the Observation itself, one Observation.component, one
 * useContext...) has values matching every part. Index rows (composite-extract.ts, table
 * sp_composite) hold one combination of component values of one element each, so a single row
 * must meet all the parts (sql-conditions.ts), and values of different components are never mixed.
 *
 * Supported: composites whose expression is a union of plain paths (`Observation |
 * Observation.component`) with up to three components of type token, string, reference, date,
 * number, quantity or uri, each a simple path relative to the element or to `%resource`. The only
 * modifier is :missing. Others are reported as unsupported by the parser.
 */
import { splitEscaped } from './escapes.js';
import { splitUnion, type SearchParamDef, type SearchParamType } from './parameters.js';
import type { Condition, SearchFilter } from './query-types.js';
import { missingConditions } from './value-conditions.js';

export interface ComponentSpec {
  type: SearchParamType;
  /** relative to each element selected by the composite's expression, or starting with %resource */
  expression: string;
}

export const MAX_COMPONENTS = 3;
const COMPONENT_TYPES = new Set<SearchParamType>(['token', 'string', 'reference', 'date', 'number', 'quantity', 'uri']);
const PLAIN_PATH = /^[A-Z][A-Za-z]*(\.[a-z][A-Za-z0-9]*)*$/;

/**
 * R4 4.0.1 errata: DocumentReference-relationship lists its components' definitions swapped
 * (`relatesTo.code` points to the reference parameter, `relatesTo.target` to the token one).
 */
const SWAPPED_COMPONENT_TYPES = new Set(['http://hl7.org/fhir/SearchParameter/DocumentReference-relationship']);

const specCache = new WeakMap<SearchParamDef, { branches: string[]; components: ComponentSpec[] } | null>();

/**
 * The base paths and components of a composite parameter, or undefined when it is not supported
 * (see the header). `params`: the parameters of the composite's base type (where the component
 * definitions are looked up by URL).
 */
export function compositeSpec(def: SearchParamDef, params: ReadonlyMap<string, SearchParamDef>): { branches: string[]; components: ComponentSpec[] } | undefined {
  const cached = specCache.get(def);
  if (cached !== undefined) return cached ?? undefined;
  let result: { branches: string[]; components: ComponentSpec[] } | null = null;
  const branches = def.expression ? splitUnion(def.expression) : [];
  const comps = def.components ?? [];
  if (branches.length > 0 && branches.every((b) => PLAIN_PATH.test(b) && b.split('.')[0] === def.base) && comps.length >= 1 && comps.length <= MAX_COMPONENTS) {
    const byUrl = new Map<string, SearchParamDef>();
    for (const p of params.values()) byUrl.set(p.url, p);
    let types = comps.map((c) => byUrl.get(c.definition)?.type);
    if (SWAPPED_COMPONENT_TYPES.has(def.url) && types.length === 2) types = [types[1], types[0]];
    // each component relative to the element, or to the resource (%resource), not a mix
    const anchored = comps.every((c) => new Set(splitUnion(c.expression).map((e) => e.startsWith('%resource.'))).size === 1);
    if (anchored && types.every((t): t is SearchParamType => t !== undefined && COMPONENT_TYPES.has(t))) {
      result = { branches, components: comps.map((c, i) => ({ type: types[i]!, expression: c.expression })) };
    }
  }
  specCache.set(def, result);
  return result ?? undefined;
}

/**
 * Parses one component's value (without commas) as for a parameter of that type: its
 * alternatives (usually one; a UCUM quantity may also match in canonical units).
 */
export type ComponentParser = (type: SearchParamType, value: string) => Condition[];

/**
 * The filter of `key=value` for a supported composite parameter; `rawValues`: the comma-separated
 * alternatives (escapes kept). `bad` makes the 400 for a malformed value.
 */
export function compositeFilter(
  def: SearchParamDef,
  indexParams: readonly string[],
  spec: { components: ComponentSpec[] },
  modifier: string | undefined,
  rawValues: string[],
  parseComponent: ComponentParser,
  bad: (msg: string) => Error,
): SearchFilter {
  const source = { table: 'sp_composite' as const, indexParams };
  if (modifier === 'missing') {
    return { code: def.code, type: 'composite', modifier, source, negate: false, anyOf: missingConditions(rawValues, bad) };
  }
  const anyOf = rawValues.flatMap((v): Condition[] => {
    const parts = splitEscaped(v, '$'); // escapes kept for the component parsers
    if (parts.length !== spec.components.length) {
      throw bad(`a value of this composite parameter has ${spec.components.length} parts separated by '$' (${spec.components.map((c) => c.type).join('$')}), got '${v}'`);
    }
    // one alternative per combination of the parts' alternatives
    let combos: Condition[][] = [[]];
    parts.forEach((p, k) => {
      if (p.length === 0) throw bad(`component ${k + 1} of '${v}' is empty`);
      const alts = parseComponent(spec.components[k]!.type, p);
      if (alts.length === 0) throw bad(`component ${k + 1} of '${v}' is not a valid ${spec.components[k]!.type}`);
      combos = combos.flatMap((combo) => alts.map((a) => [...combo, a]));
    });
    return combos.map((parts) => ({ kind: 'composite', parts }));
  });
  return { code: def.code, type: 'composite', modifier, source, negate: false, anyOf };
}
