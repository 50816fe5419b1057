/**
 * Parsing of search parameters (search.html) into a ParsedSearch: see query.ts for the matching
 * rules. Malformed values and unsupported modifiers are a 400 naming the parameter. Unknown
 * parameters, and recognised ones not implemented yet (_text, _content, _list, _filter, special
 * parameters...), are a 400 in strict mode; otherwise they are listed in `unknown` / `unsupported`
 * for the caller to report, and ignored. Chains and _has: chain.ts; composites: composite.ts;
 * :in / :not-in / :below / :above / :of-type: modifiers.ts; one value of each type:
 * value-conditions.ts; escapes: escapes.ts.
 */
import { badRequest } from '../fhir/outcome.js';
import { paramSupported, parseLinked } from './chain.js';
import { compositeFilter, compositeSpec } from './composite.js';
import { splitEscaped, unescape } from './escapes.js';
import { TABLE_FOR_TYPE } from './extract.js';
import { REFERENCE_MODIFIERS, TOKEN_MODIFIERS, modifierFilter } from './modifiers.js';
import { indexParamsOf } from './registry.js';
import { isResourceType, searchParamsFor, type SearchParamDef, type SearchParamType } from './parameters.js';
import {
  MAX_COUNT,
  type Condition,
  type ParsedSearch,
  type SearchFilter,
  type SearchOptions,
  type SortKey,
} from './query-types.js';
import { canonicalQuantitySearch } from './ucum.js';
import { dateCondition, missingConditions, numberCondition, quantityCondition, referenceCondition, tokenCondition } from './value-conditions.js';
import { normalizeString, normForIndex } from './values.js';

/** Result / control parameters: recognised, never "unknown". */
const RESULT_PARAMS = new Set([
  '_count', '_offset', '_sort', '_total', '_summary', '_elements', '_include', '_revinclude', '_format', '_pretty', '_cursor',
  '_contained', '_containedType',
]);
/** Recognised parameters whose processing is not implemented yet. */
const UNSUPPORTED_PARAMS = new Set(['_include', '_revinclude', '_contained', '_containedType', '_has', '_text', '_content', '_list', '_query', '_filter', '_type']);

/** Modifiers supported now, by parameter type (a reference also takes any resource type as modifier). */
const MODIFIERS: Record<string, ReadonlySet<string>> = {
  token: new Set(['missing', 'not', 'text', ...TOKEN_MODIFIERS]),
  string: new Set(['missing', 'exact', 'contains']),
  reference: new Set(['missing', 'identifier', ...REFERENCE_MODIFIERS]),
  date: new Set(['missing']),
  number: new Set(['missing']),
  quantity: new Set(['missing']),
  uri: new Set(['missing', 'below', 'above']),
};
/** Modifiers of the spec this engine does not implement yet: a clear 400 rather than silently wrong results. */
const LATER_MODIFIERS = new Set(['iterate', 'code-text', 'text-advanced']);

class Parser {
  readonly parsed: ParsedSearch;
  private readonly params: ReadonlyMap<string, SearchParamDef>;

  constructor(
    resourceType: string,
    private readonly options: SearchOptions,
  ) {
    this.params = options.registry ? options.registry.paramsFor(resourceType) : searchParamsFor(resourceType);
    this.parsed = { resourceType, filters: [], sort: [], include: [], revinclude: [], unknown: [], unsupported: [] };
  }

  private unknown(code: string, key: string): void {
    if (this.options.strict) {
      throw badRequest(`Unknown search parameter '${key}' for ${this.parsed.resourceType}`, [code]);
    }
    if (!this.parsed.unknown.includes(code)) this.parsed.unknown.push(code);
  }

  /** Recognised but not implemented: an error in strict mode (it must not silently widen a conditional write). */
  private unsupported(name: string): void {
    if (this.options.strict) {
      const code = name.split(/[:.]/)[0]!;
      throw badRequest(`Search parameter '${name}' is not supported yet (${this.parsed.resourceType})`, [code]);
    }
    if (!this.parsed.unsupported.includes(name)) this.parsed.unsupported.push(name);
  }

  add(key: string, value: string): void {
    const colon = key.indexOf(':');
    const code = colon < 0 ? key : key.slice(0, colon);
    const modifier = colon < 0 ? undefined : key.slice(colon + 1);

    if (RESULT_PARAMS.has(code)) return this.resultParam(code, key, value);
    // chained (subject:Patient.name) and reverse-chained (_has:Observation:patient:code) parameters
    if (code === '_has' || key.includes('.')) return this.linked(key, value);

    const def = this.params.get(code);
    if (!def) {
      if (UNSUPPORTED_PARAMS.has(code)) return this.unsupported(code);
      return this.unknown(code, key);
    }
    if (!paramSupported(def, this.params)) return this.unsupported(code);
    if (UNSUPPORTED_PARAMS.has(code)) return this.unsupported(code);

    const filter = this.filter(def, code, key, modifier, value);
    if (filter && filter.anyOf.length > 0) this.parsed.filters.push(filter);
  }

  /** A chained or _has parameter (chain.ts). Errors name the parameter's first code. */
  private linked(key: string, value: string): void {
    const host = {
      paramsFor: (t: string) => this.paramsOf(t),
      plainFilter: (def: SearchParamDef, code: string, k: string, modifier: string | undefined, v: string) => this.filter(def, code, k, modifier, v),
    };
    const { head, result } = parseLinked(host, this.parsed.resourceType, key, value);
    if (result === undefined) return;
    if ('skip' in result) return result.skip === 'unknown' ? this.unknown(head, key) : this.unsupported(key);
    if (result.anyOf.length > 0) this.parsed.filters.push(result);
  }

  // -------------------------------------------------------------------------------------------
  // Result parameters

  private resultParam(code: string, key: string, value: string): void {
    const p = this.parsed;
    switch (code) {
      case '_count': {
        if (!/^\d+$/.test(value)) throw badRequest(`_count must be a non-negative integer, got '${value}'`, ['_count']);
        p.count = Math.min(Number(value), MAX_COUNT);
        return;
      }
      case '_offset': {
        if (!/^\d+$/.test(value)) throw badRequest(`_offset must be a non-negative integer, got '${value}'`, ['_offset']);
        p.offset = Number(value);
        return;
      }
      case '_sort':
        return this.sort(value);
      case '_total':
        if (value !== 'none' && value !== 'estimate' && value !== 'accurate') {
          throw badRequest(`_total must be none, estimate or accurate, got '${value}'`, ['_total']);
        }
        p.total = value;
        return;
      case '_summary':
        if (!['true', 'text', 'data', 'count', 'false'].includes(value)) {
          throw badRequest(`_summary must be true, text, data, count or false, got '${value}'`, ['_summary']);
        }
        p.summary = value as ParsedSearch['summary'];
        return;
      case '_elements':
        p.elements = value.split(',').map((e) => e.trim()).filter(Boolean);
        return;
      case '_cursor':
        p.cursor = value;
        return;
      // Applied by the search interaction (src/search/include.ts), which also validates them.
      case '_include':
        p.include.push(value);
        return;
      case '_revinclude':
        p.revinclude.push(value);
        return;
      case '_contained':
      case '_containedType':
        return this.unsupported(code);
      default:
        return; // _format, _pretty: for the HTTP layer
    }
  }

  private sort(value: string): void {
    const keys: SortKey[] = [];
    for (let item of value.split(',')) {
      item = item.trim();
      if (!item) continue;
      const descending = item.startsWith('-');
      const code = descending ? item.slice(1) : item;
      if (code === '_id' || code === '_lastUpdated') {
        keys.push({ code, descending, source: { column: code === '_id' ? 'id' : 'last_updated' } });
        continue;
      }
      const def = this.params.get(code);
      const table = def ? TABLE_FOR_TYPE[def.type] : undefined;
      if (!def || !table || !def.expression) {
        if (def || this.options.strict) throw badRequest(`Cannot sort on '${code}': not a sortable search parameter of ${this.parsed.resourceType}`, ['_sort']);
        this.unknown(code, `_sort=${code}`);
        continue;
      }
      keys.push({ code, descending, source: { table, indexParams: indexParamsOf(this.params, code), type: def.type } });
    }
    this.parsed.sort = keys;
  }

  // -------------------------------------------------------------------------------------------
  // Filters

  /** The parameters of a type in this search's registry (a chain's filters are on other types). */
  private paramsOf(resourceType: string): ReadonlyMap<string, SearchParamDef> {
    return this.options.registry ? this.options.registry.paramsFor(resourceType) : searchParamsFor(resourceType);
  }

  private filter(def: SearchParamDef, code: string, key: string, modifier: string | undefined, value: string): SearchFilter | undefined {
    const bad = (msg: string) => badRequest(`Invalid value for search parameter '${key}': ${msg}`, [code]);
    const rawValues = splitEscaped(value, ',').filter((v) => v.length > 0);
    if (rawValues.length === 0) return undefined; // an empty parameter is ignored
    if (def.type === 'composite') return this.composite(def, code, key, modifier, rawValues, bad);

    if (code === '_id') {
      if (modifier !== undefined && modifier !== 'not') throw this.badModifier(code, key, modifier);
      return {
        code,
        type: 'token',
        modifier,
        source: { column: 'id' },
        negate: modifier === 'not',
        anyOf: rawValues.map((v) => ({ kind: 'id', id: unescape(v) })),
      };
    }
    if (code === '_lastUpdated') {
      if (modifier !== undefined) throw this.badModifier(code, key, modifier);
      return { code, type: 'date', source: { column: 'last_updated' }, negate: false, anyOf: rawValues.map((v) => dateCondition(v, bad, this.options.now)) };
    }

    const table = TABLE_FOR_TYPE[def.type]!;
    // The rows may be stored under other parameters (the same values, or the parts of a union: registry.ts).
    const stored = indexParamsOf(this.paramsOf(def.base), code);
    let indexParams = stored;
    let negate = false;
    let typeModifier: string | undefined;
    if (modifier !== undefined) {
      const allowed = MODIFIERS[def.type];
      if (def.type === 'reference' && isResourceType(modifier)) {
        if (def.targets && !def.targets.includes(modifier)) {
          throw badRequest(`'${modifier}' is not a target type of search parameter '${code}' (${def.targets.join(', ')})`, [code]);
        }
        typeModifier = modifier;
      } else if (!allowed?.has(modifier)) {
        throw this.badModifier(code, key, modifier);
      }
    }

    if (modifier === 'missing') {
      return { code, type: def.type, modifier, source: { table, indexParams }, negate: false, anyOf: missingConditions(rawValues, bad) };
    }
    const special = modifier === undefined ? undefined : modifierFilter(def, code, modifier, rawValues, bad, stored);
    if (special) return special;

    let anyOf: Condition[];
    let filterTable = table;
    switch (def.type) {
      case 'token':
        negate = modifier === 'not';
        anyOf = rawValues.map((v) => (modifier === 'text' ? { kind: 'text', text: normalizeString(unescape(v)) } : tokenCondition(v, bad)));
        break;
      case 'string':
        anyOf = rawValues.map((v): Condition => {
          const exact = unescape(v);
          const mode = modifier === 'exact' ? 'exact' : modifier === 'contains' ? 'contains' : 'start';
          return { kind: 'string', mode, exact, norm: mode === 'exact' ? normForIndex(exact) : normalizeString(exact) };
        });
        break;
      case 'reference':
        if (modifier === 'identifier') {
          filterTable = 'sp_token';
          indexParams = [`${code}:identifier`];
          anyOf = rawValues.map((v) => tokenCondition(v, bad));
        } else {
          anyOf = rawValues.map((v) => referenceCondition(unescape(v), typeModifier, bad));
        }
        break;
      case 'date':
        anyOf = rawValues.map((v) => dateCondition(v, bad, this.options.now));
        break;
      case 'number':
        anyOf = rawValues.map((v) => numberCondition(unescape(v), bad));
        break;
      case 'quantity':
        // UCUM quantities in convertible units are searched in canonical form (ucum.ts).
        ({ indexParams, anyOf } = canonicalQuantitySearch(stored, rawValues.map((v) => quantityCondition(v, bad))));
        break;
      case 'uri':
        anyOf = rawValues.map((v): Condition => {
          let u = unescape(v);
          const mode = modifier === 'below' ? 'below' : modifier === 'above' ? 'above' : 'exact';
          if (mode !== 'exact' && u.length > 1 && u.endsWith('/')) u = u.slice(0, -1);
          return { kind: 'uri', mode, value: u };
        });
        break;
      default:
        return undefined;
    }
    return { code, type: def.type, modifier, source: { table: filterTable, indexParams }, negate, anyOf };
  }

  /** A composite parameter (composite.ts): each `$`-separated part parsed as its component's type. */
  private composite(def: SearchParamDef, code: string, key: string, modifier: string | undefined, rawValues: string[], bad: (m: string) => Error): SearchFilter {
    const spec = compositeSpec(def, this.paramsOf(def.base));
    if (!spec) throw badRequest(`Search parameter '${key}' is not supported yet (${def.base})`, [code]);
    if (modifier !== undefined && modifier !== 'missing') throw this.badModifier(code, key, modifier);
    const parsePart = (type: SearchParamType, v: string): Condition[] => {
      // quantities as given: composite rows hold no canonical (UCUM) forms
      if (type === 'quantity') return [quantityCondition(v, bad)];
      const part = { code, type, base: def.base, url: def.url } as SearchParamDef;
      return this.filter(part, code, key, undefined, v)?.anyOf ?? [];
    };
    return compositeFilter(def, indexParamsOf(this.paramsOf(def.base), code), spec, modifier, rawValues, parsePart, bad);
  }

  private badModifier(code: string, key: string, modifier: string) {
    const later = LATER_MODIFIERS.has(modifier) ? ' is not supported yet' : ' is not a valid modifier';
    return badRequest(`Search parameter '${key}': modifier ':${modifier}'${later} for this parameter`, [code]);
  }
}

/** Parse a search on `resourceType` from its query parameters, in order. */
export function parseSearch(resourceType: string, params: Array<[string, string]>, options: SearchOptions): ParsedSearch {
  const parser = new Parser(resourceType, options);
  for (const [key, value] of params) {
    // PostgreSQL text cannot hold U+0000: such a value can match nothing and must not reach SQL.
    if (key.includes('\0') || value.includes('\0')) throw badRequest(`Search parameter '${key}' contains a NUL character`, [key.replace(/\0/g, '')]);
    parser.add(key, value);
  }
  return parser.parsed;
}
