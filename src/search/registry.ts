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
import { isResourceType, makeDef, searchParamsFor, type SearchParamDef, type SearchParamType } from './parameters.js';

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
 * Value types whose identical parameters share index rows. A reference parameter always keeps its
 * own rows: chains, _include, _revinclude and compartments name reference parameters directly.
 */
const SHAREABLE: ReadonlySet<SearchParamType> = new Set(['string', 'token', 'date', 'number', 'quantity', 'uri']);
const sharedCache = new WeakMap<ReadonlyMap<string, SearchParamDef>, ReadonlyMap<string, string>>();

/**
 * The parameter code whose index rows hold `code`'s values among `params` (one type's map from a
 * registry). Parameters of a shareable type with the same type and expression select the same
 * values, so their rows are written once, under one of their codes, and the others are searched
 * and sorted through those rows (R4: `phonetic` and `name` of Patient, Person, Practitioner and
 * RelatedPerson; 6% of the rows an HL7 v2 ADT writes). A core parameter owns its group, so a
 * tenant's custom parameter with a core one's expression finds existing resources without a
 * reindex; a custom parameter that replaces a group's owner splits the group, and the reindex
 * that any changed definition needs (reindex-job.ts) writes the rows.
 */
export function indexParamOf(params: ReadonlyMap<string, SearchParamDef>, code: string): string {
  let shared = sharedCache.get(params);
  if (!shared) {
    const first = new Map<string, string>();
    const byCode = new Map<string, string>();
    // Core parameters own their groups (their rows exist already), then the first code in sort order.
    const rank = (d: SearchParamDef) => `${searchParamsFor(d.base).get(d.code) === d ? 0 : 1}${d.code}`;
    for (const def of [...params.values()].sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : 0))) {
      if (!SHAREABLE.has(def.type) || !def.expression) continue;
      const key = `${def.type} ${def.expression}`;
      const owner = first.get(key);
      if (owner === undefined) first.set(key, def.code);
      else byCode.set(def.code, owner);
    }
    sharedCache.set(params, (shared = byCode));
  }
  return shared.get(code) ?? code;
}
