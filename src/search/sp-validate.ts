/**
 * Checks that a SearchParameter resource can be used as a search parameter of this server
 * (searchparameter.html), beyond the structural validation every resource gets: a usable code,
 * R4 base and target types, a supported type, and a FHIRPath expression that compiles with
 * fhirpath.js and applies to each base. Only active and draft parameters are checked (and
 * loaded): retired / unknown ones are stored as any other resource.
 */
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { SearchParameter } from 'fhir/r4.js';
import type { Issue } from '../fhir/outcome.js';
import { isResourceType, makeDef } from './parameters.js';

/** Parameter types this server indexes and searches (special ones are not supported). */
export const SUPPORTED_CUSTOM_TYPES: ReadonlySet<string> = new Set(['number', 'date', 'string', 'token', 'reference', 'quantity', 'uri', 'composite']);

const ABSTRACT_BASES = new Set(['Resource', 'DomainResource']);
/** No '.', ':' or '$' (chains, modifiers), no leading '_' (reserved for the spec's own parameters). */
const CODE_RE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** Whether a stored SearchParameter takes part in search. */
export function isSearchable(sp: Pick<SearchParameter, 'status'>): boolean {
  return sp.status === 'active' || sp.status === 'draft';
}

function compileError(expression: string): string | undefined {
  try {
    fhirpath.compile(expression, r4, { resolveInternalTypes: false });
    return undefined;
  } catch (error) {
    return String((error as Error).message ?? error).split('\n')[0];
  }
}

/** The problems that make `sp` unusable for search (errors); empty when it is fine or not searchable. */
export function searchParameterIssues(sp: SearchParameter): Issue[] {
  if (!isSearchable(sp)) return [];
  const issues: Issue[] = [];
  const error = (diagnostics: string, path: string) => issues.push({ severity: 'error', code: 'invalid', diagnostics, expression: [`SearchParameter.${path}`] });

  if (typeof sp.code !== 'string' || !CODE_RE.test(sp.code)) {
    error(`SearchParameter.code '${sp.code ?? ''}' must be a letter then letters, digits, '-' or '_' (no '.', ':' or leading '_')`, 'code');
  }
  const bases = Array.isArray(sp.base) ? sp.base : [];
  if (bases.length === 0) error('SearchParameter.base must name at least one resource type', 'base');
  bases.forEach((base, i) => {
    if (!ABSTRACT_BASES.has(base) && !isResourceType(base)) error(`SearchParameter.base '${base}' is not an R4 resource type`, `base[${i}]`);
  });
  (sp.target ?? []).forEach((target, i) => {
    if (!isResourceType(target)) error(`SearchParameter.target '${target}' is not an R4 resource type`, `target[${i}]`);
  });
  if (!SUPPORTED_CUSTOM_TYPES.has(sp.type)) {
    error(`SearchParameter.type '${sp.type}' is not supported for custom parameters (supported: ${[...SUPPORTED_CUSTOM_TYPES].join(', ')})`, 'type');
  }

  if (typeof sp.expression !== 'string' || sp.expression.trim() === '') {
    error('SearchParameter.expression is required: this server evaluates FHIRPath expressions', 'expression');
  } else {
    const problem = compileError(sp.expression);
    if (problem) error(`SearchParameter.expression does not compile: ${problem}`, 'expression');
    else if (issues.length === 0) {
      // Each concrete base must have a part of the expression that starts with it.
      for (const base of bases) {
        if (ABSTRACT_BASES.has(base)) continue;
        if (makeDef(sp, base).expression === undefined) {
          error(`SearchParameter.expression '${sp.expression}' has no part that applies to base '${base}' (it must start with '${base}.')`, 'expression');
        }
      }
    }
  }

  if (sp.type === 'composite') {
    const components = sp.component ?? [];
    if (components.length < 2) error('A composite SearchParameter needs at least two components', 'component');
    components.forEach((c, i) => {
      if (!c.definition) error('SearchParameter.component.definition is required', `component[${i}].definition`);
      const problem = c.expression ? compileError(c.expression) : 'missing';
      if (problem) error(`SearchParameter.component.expression is not a valid FHIRPath expression: ${problem}`, `component[${i}].expression`);
    });
  }
  return issues;
}
