/** Types and constants of the parsed search (see query.ts for the matching rules). */
import type { IndexTable } from '../store/schema.js';
import type { SearchParamDef, SearchParamType } from './parameters.js';
import type { SearchRegistry } from './registry.js';

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

export interface SearchOptions {
  /** Unknown parameters are an error (400) rather than ignored (handling=strict). */
  strict: boolean;
  /** "now" for the `ap` prefix on dates (tests); defaults to the current time. */
  now?: Date;
  /** The tenant's search parameters (src/search/registry.ts); the R4 core ones when omitted. */
  registry?: SearchRegistry;
}

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

/** One alternative of a filter (the comma-separated values of a parameter are OR-ed). */
export type Condition =
  | { kind: 'missing'; missing: boolean }
  /** system undefined: any system; null: no system. code undefined: any code of that system. */
  | { kind: 'token'; system?: string | null; code?: string }
  | { kind: 'text'; text: string }
  | { kind: 'string'; mode: 'start' | 'exact' | 'contains'; norm: string; exact: string }
  | { kind: 'reference'; type?: string; id?: string; version?: string; url?: string }
  | { kind: 'date'; prefix: Prefix; lo: string; hi: string }
  /** number and quantity; lo/hi: the implicit range of `value`; system/code: quantity units. */
  | { kind: 'number'; prefix: Prefix; value: string; lo: string; hi: string; system?: string; code?: string }
  | { kind: 'uri'; mode: 'exact' | 'below' | 'above'; value: string }
  | { kind: 'id'; id: string }
  /** token in a set of codes (:in, :below, :above after expansion); system null: no system. */
  | { kind: 'codes'; sets: Array<{ system: string | null; codes: string[] }> }
  /** token in a ValueSet stored in the database (resource_type 'ValueSet' with this url): see terminology.ts. */
  | { kind: 'stored-value-set'; url: string; version?: string }
  /** composite parameter: one condition per component, all met by the same sp_composite row. */
  | { kind: 'composite'; parts: Condition[] };

/**
 * One hop from the resources a filter level is about to other resources (search.html#chaining,
 * #has): `chain` follows the reference parameter `param` of the current resources to resources of
 * `types`; `has` goes to the resources of `type` whose reference parameter `param` points to them.
 */
export type FilterLink = { kind: 'chain'; param: string; types: string[] } | { kind: 'has'; type: string; param: string };

export interface SearchFilter {
  /** Parameter code as searched (without modifier). */
  code: string;
  type: SearchParamType;
  modifier?: string;
  /**
   * Where the values live: an index table (rows whose param is one of indexParams: registry.ts
   * indexParamsOf) or a column of `resource`.
   */
  source: { table: IndexTable; indexParams: readonly string[] } | { column: 'id' | 'last_updated' };
  /** :not — resources with no value matching any alternative. */
  negate: boolean;
  anyOf: Condition[];
  /**
   * Chained / reverse-chained parameters: the rest of the filter applies to the resources reached
   * by following these links from the searched resource, in order (the last ones are of the types
   * whose parameter `code` is matched). Absent for an ordinary parameter.
   */
  path?: FilterLink[];
}

export interface SortKey {
  code: string;
  descending: boolean;
  source: { table: IndexTable; indexParams: readonly string[]; type: SearchParamType } | { column: 'id' | 'last_updated' };
}

export interface ParsedSearch {
  resourceType: string;
  /** AND-ed. */
  filters: SearchFilter[];
  /** _count, capped at MAX_COUNT. */
  count?: number;
  /** _offset, when the caller passes it through. */
  offset?: number;
  sort: SortKey[];
  total?: 'none' | 'estimate' | 'accurate';
  summary?: 'true' | 'text' | 'data' | 'count' | 'false';
  elements?: string[];
  cursor?: string;
  /** Raw _include / _revinclude values (not applied yet: also listed in `unsupported`). */
  include: string[];
  revinclude: string[];
  /** Parameters (codes, without modifiers) that are not known for the type and were ignored. */
  unknown: string[];
  /** Recognised but not supported yet, ignored (e.g. '_include', 'subject.name', '_has'). */
  unsupported: string[];
}

export type { SearchParamDef };
