/**
 * Parsing of chained and reverse-chained parameters (search.html#chaining, #has) into a
 * SearchFilter with a `path` (query-types.ts; SQL in links-sql.ts):
 *
 * - `subject:Patient.name=peter`, `subject.name=peter`, `subject:Patient.organization.name=x`:
 *   each hop is a reference parameter, optionally with a target type. Without one, the hop goes
 *   to every target type of the parameter, which is allowed only when all of them have the next
 *   parameter (then the filter must parse the same way for all of them); otherwise it is a 400
 *   asking for a type modifier. The last parameter may be of any type and take its modifiers.
 * - `_has:Observation:patient:code=1234-5`: resources that Observations reference through their
 *   `patient` parameter, where the Observation matches `code=1234-5`. The rest may itself be a
 *   `_has:` or a chain (`_has:Observation:patient:_has:AuditEvent:entity:agent=x`).
 *
 * Unknown parameters anywhere in the chain make the whole parameter unknown (400 in strict mode,
 * reported and ignored otherwise), as do recognised but unsupported ones.
 */
import { badRequest, FhirError } from '../fhir/outcome.js';
import { compositeSpec } from './composite.js';
import { isResourceType, type SearchParamDef } from './parameters.js';
import type { FilterLink, SearchFilter } from './query-types.js';

/** What the parser (query-parse.ts) provides to the chain parser. */
export interface ChainHost {
  paramsFor(resourceType: string): ReadonlyMap<string, SearchParamDef>;
  /** The filter of an ordinary (not chained) `code[:modifier]=value` for `def`; undefined when the value is empty. */
  plainFilter(def: SearchParamDef, code: string, key: string, modifier: string | undefined, value: string): SearchFilter | undefined;
}

/** Why a parameter is ignored: not known, or known but not supported. */
export type Skip = { skip: 'unknown' | 'unsupported'; name: string };

/** Parameters without an expression that are nevertheless handled (columns of `resource`). */
const COLUMN_PARAMS = new Set(['_id', '_lastUpdated']);

/** Whether a known parameter can be searched by this engine. */
export function paramSupported(def: SearchParamDef, params: ReadonlyMap<string, SearchParamDef>): boolean {
  if (def.type === 'composite') return compositeSpec(def, params) !== undefined;
  if (def.type === 'special') return false;
  return !!def.expression || COLUMN_PARAMS.has(def.code);
}

/** The first parameter code of a (possibly chained / _has) key. */
function headCode(key: string): string {
  if (key.startsWith('_has:')) return '_has';
  return key.split('.')[0]!.split(':')[0]!;
}

const isSkip = (r: SearchFilter | Skip | undefined): r is Skip => r !== undefined && 'skip' in r;

export class ChainParser {
  constructor(
    private readonly host: ChainHost,
    /** The whole key as the client wrote it (for messages). */
    private readonly fullKey: string,
  ) {}

  private bad(msg: string): Error {
    return badRequest(`Search parameter '${this.fullKey}': ${msg}`, [headCode(this.fullKey)]);
  }

  /** The filter of `key=value` on resources of `type`; key may be plain, chained or _has. */
  parse(type: string, key: string, value: string): SearchFilter | Skip | undefined {
    if (key.startsWith('_has:') || key === '_has') return this.has(type, key, value);
    const dot = key.indexOf('.');
    if (dot >= 0) return this.chain(type, key.slice(0, dot), key.slice(dot + 1), value);
    const colon = key.indexOf(':');
    const code = colon < 0 ? key : key.slice(0, colon);
    const modifier = colon < 0 ? undefined : key.slice(colon + 1);
    const params = this.host.paramsFor(type);
    const def = params.get(code);
    if (!def) return { skip: 'unknown', name: this.fullKey };
    if (!paramSupported(def, params)) return { skip: 'unsupported', name: this.fullKey };
    return this.host.plainFilter(def, code, key, modifier, value);
  }

  private chain(type: string, head: string, rest: string, value: string): SearchFilter | Skip | undefined {
    const colon = head.indexOf(':');
    const code = colon < 0 ? head : head.slice(0, colon);
    const typeModifier = colon < 0 ? undefined : head.slice(colon + 1);
    const def = this.host.paramsFor(type).get(code);
    if (!def) return { skip: 'unknown', name: this.fullKey };
    if (def.type !== 'reference') throw this.bad(`'${code}' is a ${def.type} parameter of ${type}; only reference parameters can be chained`);
    const next = headCode(rest);
    let types: string[];
    if (typeModifier !== undefined) {
      if (!isResourceType(typeModifier)) throw this.bad(`'${typeModifier}' is not a resource type`);
      if (def.targets && !def.targets.includes(typeModifier)) throw this.bad(`'${typeModifier}' is not a target type of '${code}' (${def.targets.join(', ')})`);
      types = [typeModifier];
    } else {
      types = [...(def.targets ?? [])];
      if (types.length === 0) throw this.bad(`'${code}' can refer to any resource type: give one as a modifier, e.g. ${code}:Patient.${rest}`);
      if (types.length > 1) {
        const without = types.filter((t) => !this.host.paramsFor(t).has(next));
        if (without.length === types.length) return { skip: 'unknown', name: this.fullKey };
        if (without.length > 0) {
          throw this.bad(
            `'${code}' may refer to ${types.join(', ')}, and '${next}' is not a parameter of ${without.join(', ')}: ` +
              `give the target type as a modifier, e.g. ${code}:${types.find((t) => !without.includes(t))}.${rest}`,
          );
        }
      }
    }
    const inner: SearchFilter[] = [];
    for (const t of types) {
      const f = this.parse(t, rest, value);
      if (f === undefined || isSkip(f)) return f;
      inner.push(f);
    }
    const first = inner[0]!;
    if (inner.some((f) => JSON.stringify(f) !== JSON.stringify(first))) {
      throw this.bad(`'${rest}' means different things for the target types of '${code}' (${types.join(', ')}): give one as a modifier, e.g. ${code}:${types[0]}.${rest}`);
    }
    const link: FilterLink = { kind: 'chain', param: code, types };
    return { ...first, path: [link, ...(first.path ?? [])] };
  }

  private has(type: string, key: string, value: string): SearchFilter | Skip | undefined {
    const parts = key.split(':');
    if (parts.length < 4 || !parts[1] || !parts[2] || !parts[3]) {
      throw this.bad(`_has takes the form _has:[type]:[reference parameter]:[parameter], e.g. _has:Observation:patient:code`);
    }
    const [, sourceType, refCode] = parts as [string, string, string];
    const rest = parts.slice(3).join(':');
    if (!isResourceType(sourceType)) throw this.bad(`'${sourceType}' is not a resource type`);
    const def = this.host.paramsFor(sourceType).get(refCode);
    if (!def) return { skip: 'unknown', name: this.fullKey };
    if (def.type !== 'reference') throw this.bad(`'${refCode}' is a ${def.type} parameter of ${sourceType}, not a reference`);
    if (def.targets && !def.targets.includes(type)) {
      throw this.bad(`'${sourceType}.${refCode}' cannot refer to ${type} (it refers to ${def.targets.join(', ')})`);
    }
    const inner = this.parse(sourceType, rest, value);
    if (inner === undefined || isSkip(inner)) return inner;
    const link: FilterLink = { kind: 'has', type: sourceType, param: refCode };
    return { ...inner, path: [link, ...(inner.path ?? [])] };
  }
}

/**
 * A chained or _has `key=value` on resources of `resourceType`, with `head`, the parameter's first
 * code (`subject`, `_has`), which every 400 it raises names.
 */
export function parseLinked(host: ChainHost, resourceType: string, key: string, value: string): { head: string; result: SearchFilter | Skip | undefined } {
  const head = headCode(key);
  try {
    return { head, result: new ChainParser(host, key).parse(resourceType, key, value) };
  } catch (e) {
    if (e instanceof FhirError && e.issues[0]?.expression?.[0] !== head) throw badRequest(`Search parameter '${key}': ${e.message}`, [head]);
    throw e;
  }
}
