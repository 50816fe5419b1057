/**
 * Search parameter registries. The R4 core parameters (parameters.ts) are shared by every tenant;
 * a tenant's custom SearchParameter resources are layered on top of them in a LayeredRegistry,
 * one per tenant store (tenant-params.ts). Parsing (parseSearch, through SearchOptions.registry)
 * and index extraction (extractIndexRows' second argument) take a registry; without one they use
 * the core parameters only.
 *
 * A custom parameter applies to each type in its `base`; a base of Resource applies to every
 * resource type, DomainResource to every domain resource. A custom parameter with the code of a
 * core parameter of the same type replaces it for that tenant; among custom parameters with the
 * same code and type, the one loaded last (most recently updated) wins.
 */
import r4 from 'fhirpath/fhir-context/r4';
import type { SearchParameter } from 'fhir/r4.js';
import { compositeSpec } from './composite.js';
import { isResourceType, makeDef, searchParamsFor, splitUnion, type SearchParamDef, type SearchParamType } from './parameters.js';

export interface SearchRegistry {
  /**
   * The search parameters of `resourceType` by code (empty for an unknown type). The same map
   * instance is returned while the registry is unchanged: callers may cache by identity.
   */
  paramsFor(resourceType: string): ReadonlyMap<string, SearchParamDef>;
}

/** The R4 core parameters only (and any added with addCustomSearchParameter, which is global). */
export const coreRegistry: SearchRegistry = { paramsFor: searchParamsFor };

/** True when a parameter with these bases applies to `resourceType`. */
export function appliesTo(bases: readonly string[] | undefined, resourceType: string): boolean {
  if (!bases || !isResourceType(resourceType)) return false;
  for (const base of bases) {
    if (base === resourceType || base === 'Resource') return true;
    if (base === 'DomainResource' && r4.type2Parent[resourceType] === 'DomainResource') return true;
  }
  return false;
}

/** Core parameters plus a fixed list of custom SearchParameter resources (immutable: build a new one on change). */
export class LayeredRegistry implements SearchRegistry {
  private readonly cache = new Map<string, { core: ReadonlyMap<string, SearchParamDef>; merged: ReadonlyMap<string, SearchParamDef> }>();

  /**
   * @param custom valid SearchParameter resources, in load order (later ones win on a code clash)
   * @param version the tenant's search parameter version these were loaded at (-1: not loaded)
   */
  constructor(
    readonly custom: readonly SearchParameter[],
    readonly version: number,
  ) {}

  paramsFor(resourceType: string): ReadonlyMap<string, SearchParamDef> {
    const core = searchParamsFor(resourceType);
    if (this.custom.length === 0) return core;
    const hit = this.cache.get(resourceType);
    // The core map changes only through addCustomSearchParameter; rebuild when it does.
    if (hit && hit.core === core) return hit.merged;
    let merged: Map<string, SearchParamDef> | undefined;
    for (const sp of this.custom) {
      if (!appliesTo(sp.base, resourceType)) continue;
      merged ??= new Map(core);
      merged.set(sp.code, makeDef(sp, resourceType));
    }
    const result = merged ?? core;
    this.cache.set(resourceType, { core, merged: result });
    return result;
  }

  /** The custom parameters (not the core ones) that apply to `resourceType`. */
  customFor(resourceType: string): SearchParameter[] {
    return this.custom.filter((sp) => appliesTo(sp.base, resourceType));
  }
}

/**
 * Types whose parameters may be read through other parameters' rows. A reference parameter always
 * keeps its own rows: chains, _include, _revinclude and compartments name reference parameters
 * directly.
 */
const SHAREABLE: ReadonlySet<SearchParamType> = new Set(['string', 'token', 'date', 'number', 'quantity', 'uri', 'composite']);
const storedCache = new WeakMap<ReadonlyMap<string, SearchParamDef>, ReadonlyMap<string, readonly string[]>>();

/** A union branch without the parentheses around all of it: `(Observation.value.ofType(Quantity))`. */
function bareBranch(branch: string): string {
  let b = branch.trim();
  while (b.startsWith('(') && b.endsWith(')')) {
    let depth = 0;
    let wraps = true;
    for (let i = 0; i < b.length - 1 && wraps; i++) {
      if (b[i] === '(') depth++;
      else if (b[i] === ')' && --depth === 0) wraps = false;
    }
    if (!wraps) break;
    b = b.slice(1, -1).trim();
  }
  return b;
}

/**
 * The parameter codes whose index rows hold `code`'s values among `params` (one type's map from a
 * registry); `[code]` when it has rows of its own. Two cases, both driven by the definitions:
 * - Same values: parameters of a shareable type with the same type and expression (and, for
 *   composites, the same components) are written once, under one of their codes (R4: `phonetic`
 *   is `name` of Patient, Person, Practitioner and RelatedPerson).
 * - A union: a parameter whose expression's branches are exactly those of other parameters of the
 *   same type (and components) is read through their rows (R4: Observation `combo-code` is
 *   `code` | `component-code`, `combo-value-quantity`, `combo-code-value-quantity`... — a quarter
 *   of an Observation's rows). Every search form reads "some row of the parameter matches", which is
 *   the same over the parts' rows; sorting takes the least or greatest of them all.
 * A core parameter owns its group, so a tenant's custom parameter with a core one's expression
 * finds existing resources without a reindex; a custom parameter that replaces a group's owner or a
 * union's part splits the group, and the reindex that any changed definition needs
 * (reindex-job.ts) writes the rows.
 */
export function indexParamsOf(params: ReadonlyMap<string, SearchParamDef>, code: string): readonly string[] {
  let stored = storedCache.get(params);
  if (!stored) storedCache.set(params, (stored = storedParams(params)));
  return stored.get(code) ?? [code];
}

/** Whether `code` has index rows of its own (indexParamsOf). */
export function ownsRows(params: ReadonlyMap<string, SearchParamDef>, code: string): boolean {
  const stored = indexParamsOf(params, code);
  return stored.length === 1 && stored[0] === code;
}

/** The parameters read through other parameters' rows (indexParamsOf), and those rows' codes. */
function storedParams(params: ReadonlyMap<string, SearchParamDef>): ReadonlyMap<string, readonly string[]> {
  interface Candidate { def: SearchParamDef; kind: string; branches: ReadonlySet<string> }
  // Core parameters first (their rows exist already), then by code: the first of a group owns it.
  const rank = (d: SearchParamDef) => `${searchParamsFor(d.base).get(d.code) === d ? 0 : 1}${d.code}`;
  const candidates: Candidate[] = [];
  for (const def of [...params.values()].sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : 0))) {
    if (!SHAREABLE.has(def.type) || !def.expression) continue;
    let kind: string = def.type;
    if (def.type === 'composite') {
      const spec = compositeSpec(def, params);
      if (!spec) continue;
      kind += ` ${spec.components.map((c) => `${c.type}:${c.expression}`).join(' ')}`;
    }
    candidates.push({ def, kind, branches: new Set(splitUnion(def.expression).map(bareBranch)) });
  }
  const out = new Map<string, readonly string[]>();
  const owners = new Map<string, string>();
  const storedOf = (d: SearchParamDef) => out.get(d.code) ?? [d.code];
  // Fewer branches first: a union's parts are settled before it.
  const bySize = [...candidates].sort((a, b) => a.branches.size - b.branches.size);
  for (const c of bySize) {
    const key = `${c.kind}\u0000${[...c.branches].sort().join('\u0000')}`;
    const owner = owners.get(key);
    if (owner !== undefined) {
      out.set(c.def.code, storedOf(params.get(owner)!));
      continue;
    }
    owners.set(key, c.def.code);
    if (c.branches.size < 2) continue;
    // Parts: smaller parameters of the same kind whose branches are all c's, largest first, disjoint.
    const covered = new Set<string>();
    const parts: string[] = [];
    for (const p of bySize.filter((p) => p.kind === c.kind && p.branches.size < c.branches.size).sort((a, b) => b.branches.size - a.branches.size)) {
      if (![...p.branches].every((b) => c.branches.has(b) && !covered.has(b))) continue;
      for (const b of p.branches) covered.add(b);
      for (const stored of storedOf(p.def)) if (!parts.includes(stored)) parts.push(stored);
    }
    if (covered.size === c.branches.size) out.set(c.def.code, parts);
  }
  return out;
}
