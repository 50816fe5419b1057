/**
 * Filters for the modifiers that need more than the plain value parsers of value-conditions.ts
 * (search.html#modifiers):
 *
 * - token `:below` / `:above` (`system|code`): the code and the codes it subsumes / that subsume
 *   it, from the core code system hierarchies (terminology.ts); matched exactly when the system is
 *   not one with a known hierarchy, or no system is given. `system|` is all codes of the system.
 * - token `:in` / `:not-in` (a ValueSet canonical URL, `|version` allowed): the resource has / has
 *   no token in the value set. `:not-in` is the negation at resource level, like `:not`: it also
 *   matches resources without any value for the parameter. Core value sets are expanded here (a
 *   400 when they cannot be); any other URL is looked up among the stored ValueSets at query time.
 * - token `:of-type` (`type-system|type-code|value`): an Identifier with that value and a
 *   type coding with that system and code (all three parts required), indexed under
 *   `<code>:of-type` (extract.ts).
 *   For :below, :above (when subsumption applies), :in and :not-in, a value indexed without a
 *   system (a primitive `code` such as Patient.gender, whose system is implied) matches on its code.
 * - reference `:below` / `:above` (an absolute URL): the reference's URL is the given one or
 *   under it at a '/' boundary / the given one or one of its '/'-prefixes, as for uri.
 */
import { splitEscaped, unescape } from './escapes.js';
import type { SearchParamDef } from './parameters.js';
import type { Condition, SearchFilter } from './query-types.js';
import { subsumedCodes, TerminologyError, valueSetExpansion } from './terminology.js';

export const TOKEN_MODIFIERS = ['below', 'above', 'in', 'not-in', 'of-type'];
export const REFERENCE_MODIFIERS = ['below', 'above'];

function subsumption(v: string, direction: 'below' | 'above', bad: (m: string) => Error): Condition {
  const parts = splitEscaped(v, '|').map(unescape);
  if (parts.length > 2) throw bad(`a token is [system]|[code], got '${unescape(v)}'`);
  if (parts.length === 1) return { kind: 'token', code: parts[0] };
  const [system, code] = parts as [string, string];
  if (!system && !code) throw bad(`'|' needs a system or a code`);
  if (!system) return { kind: 'token', system: null, code };
  if (!code) return { kind: 'token', system };
  const codes = subsumedCodes(system, code, direction);
  return codes ? { kind: 'codes', sets: [{ system, codes }] } : { kind: 'token', system, code };
}

function inValueSet(v: string, bad: (m: string) => Error): Condition {
  const url = unescape(v);
  if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) throw bad(`:in and :not-in take the canonical URL of a ValueSet, got '${url}'`);
  try {
    const sets = valueSetExpansion(url);
    if (sets) return { kind: 'codes', sets };
  } catch (e) {
    if (e instanceof TerminologyError) throw bad(e.message);
    throw e;
  }
  const bar = url.lastIndexOf('|');
  return bar < 0 ? { kind: 'stored-value-set', url } : { kind: 'stored-value-set', url: url.slice(0, bar), version: url.slice(bar + 1) };
}

function ofType(v: string, bad: (m: string) => Error): Condition {
  const parts = splitEscaped(v, '|').map(unescape);
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) {
    throw bad(`:of-type takes [type system]|[type code]|[identifier value], all three required, got '${unescape(v)}'`);
  }
  return { kind: 'token', system: `${parts[0]}|${parts[1]}`, code: parts[2] };
}

/**
 * The filter for `code:modifier=rawValues` when `modifier` is one handled here for the type of
 * `def`, else undefined. `rawValues`: the comma-separated alternatives, escapes kept.
 */
/** `stored`: the parameters whose index rows hold the values (registry.ts indexParamsOf). */
export function modifierFilter(def: SearchParamDef, code: string, modifier: string, rawValues: string[], bad: (m: string) => Error, stored: readonly string[] = [code]): SearchFilter | undefined {
  if (def.type === 'token') {
    switch (modifier) {
      case 'below':
      case 'above':
        return filter(code, def, modifier, 'sp_token', stored, false, rawValues.map((v) => subsumption(v, modifier, bad)));
      case 'in':
      case 'not-in':
        return filter(code, def, modifier, 'sp_token', stored, modifier === 'not-in', rawValues.map((v) => inValueSet(v, bad)));
      case 'of-type':
        return filter(code, def, modifier, 'sp_token', stored.map((p) => `${p}:of-type`), false, rawValues.map((v) => ofType(v, bad)));
    }
  }
  if (def.type === 'reference' && (modifier === 'below' || modifier === 'above')) {
    const anyOf = rawValues.map((raw): Condition => {
      let u = unescape(raw);
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(u)) throw bad(`:${modifier} on a reference takes an absolute URL, got '${u}'`);
      if (u.length > 1 && u.endsWith('/')) u = u.slice(0, -1);
      return { kind: 'uri', mode: modifier, value: u };
    });
    return filter(code, def, modifier, 'sp_reference', stored, false, anyOf);
  }
  return undefined;
}

function filter(
  code: string,
  def: SearchParamDef,
  modifier: string,
  table: 'sp_token' | 'sp_reference',
  indexParams: readonly string[],
  negate: boolean,
  anyOf: Condition[],
): SearchFilter {
  return { code, type: def.type, modifier, source: { table, indexParams }, negate, anyOf };
}
