/**
 * _include and _revinclude (search.html#include): resources referenced by the matches (include)
 * and resources referring to them (revinclude), returned with search.mode = include.
 *
 * Forms: `Source:param`, `Source:param:Target`, `Source:*` (every reference parameter of Source);
 * the `:iterate` modifier (R4's older `:recurse` is accepted as its synonym) applies the parameter to
 * included resources too, level after level, until nothing new is found or MAX_INCLUDED resources
 * are included (then a warning). Without :iterate a parameter applies to the matches only.
 *
 * Both directions are indexed lookups batched per level, one statement per parameter:
 * - include: the sp_reference rows of the sources' rids (sp_reference_rid_idx), joined to the
 *   resource by (target_type, target_id) (its unique key).
 * - revinclude: sp_reference rows whose (target_type, target_id) is one of the targets
 *   (sp_reference_reverse_idx), joined to the resource by rid.
 * A reference given as an absolute URL counts only when it is this server's URL. Canonical
 * references (by url) and references by identifier only are not followed. Matches, and resources
 * already included, are never included again.
 */
import { badRequest } from '../fhir/outcome.js';
import type { SqlClient } from '../store/db.js';
import { quoteIdent } from '../store/schema.js';
import { isResourceType, searchParamsFor } from './parameters.js';
import type { SearchOptions } from './query-types.js';

export const MAX_INCLUDED = 1000;
/** A guard on iteration depth on top of the size cap. */
const MAX_LEVELS = 64;

export interface IncludeSpec {
  reverse: boolean;
  iterate: boolean;
  source: string;
  /** Reference parameter codes (several for `*`). */
  params: string[];
  target?: string;
  /** As given, for messages. */
  text: string;
}

export interface IncludedRow {
  rid: string;
  id: string;
  resource_type: string;
  content: string;
}

const INCLUDE_KEYS = new Set(['_include', '_revinclude']);

/**
 * The include specs among the search parameters. Invalid ones are a 400 in strict mode, otherwise
 * skipped and described in `warnings`.
 */
export function parseIncludes(
  pairs: ReadonlyArray<readonly [string, string]>,
  options: Pick<SearchOptions, 'strict' | 'registry'>,
): { specs: IncludeSpec[]; warnings: string[]; rejected: Set<readonly [string, string]> } {
  const specs: IncludeSpec[] = [];
  const warnings: string[] = [];
  const rejected = new Set<readonly [string, string]>();
  for (const pair of pairs) {
    const [key, value] = pair;
    const [name, modifier, ...more] = key.split(':');
    if (!INCLUDE_KEYS.has(name!)) continue;
    const problem = (msg: string) => {
      if (options.strict) throw badRequest(`${key}=${value}: ${msg}`, [name!]);
      warnings.push(`${key}=${value} was ignored: ${msg}`);
      rejected.add(pair);
    };
    if (more.length || (modifier !== undefined && modifier !== 'iterate' && modifier !== 'recurse')) {
      problem(`the only modifier of ${name} is :iterate`);
      continue;
    }
    for (const item of value.split(',').map((v) => v.trim()).filter(Boolean)) {
      const [source, param, target, ...rest] = item.split(':');
      if (!source || !param || rest.length) {
        problem(`expected SourceType:parameter[:TargetType], got '${item}'`);
        continue;
      }
      if (!isResourceType(source)) {
        problem(`'${source}' is not a resource type`);
        continue;
      }
      const defs = options.registry ? options.registry.paramsFor(source) : searchParamsFor(source);
      let params: string[];
      if (param === '*') {
        params = [...defs.values()].filter((d) => d.type === 'reference' && d.expression).map((d) => d.code);
      } else {
        const def = defs.get(param);
        if (!def || def.type !== 'reference') {
          problem(`'${param}' is not a reference search parameter of ${source}`);
          continue;
        }
        params = [param];
        if (target !== undefined && def.targets && !def.targets.includes(target) && !def.targets.includes('Resource')) {
          problem(`'${target}' is not a target type of ${source}:${param}`);
          continue;
        }
      }
      if (target !== undefined && !isResourceType(target)) {
        problem(`'${target}' is not a resource type`);
        continue;
      }
      specs.push({ reverse: name === '_revinclude', iterate: modifier !== undefined, source, params, target, text: `${key}=${item}` });
    }
  }
  return { specs, warnings, rejected };
}

interface Node {
  rid: string;
  type: string;
  id: string;
}

/**
 * Resources to include for the matched rows, in discovery order, without the matches or duplicates;
 * `truncated` when the cap was reached.
 */
export async function resolveIncludes(
  client: SqlClient,
  schema: string,
  baseUrl: string,
  matches: ReadonlyArray<{ rid: string; id: string; resource_type: string }>,
  specs: IncludeSpec[],
): Promise<{ rows: IncludedRow[]; truncated: boolean }> {
  const s = quoteIdent(schema);
  const seen = new Set(matches.map((m) => `${m.resource_type}/${m.id}`));
  const out: IncludedRow[] = [];
  let frontier: Node[] = matches.map((m) => ({ rid: m.rid, type: m.resource_type, id: m.id }));
  for (let level = 0; frontier.length > 0 && specs.length > 0 && level < MAX_LEVELS; level++) {
    const active = specs.filter((sp) => level === 0 || sp.iterate);
    if (active.length === 0) break;
    const next: Node[] = [];
    for (const spec of active) {
      const room = MAX_INCLUDED - out.length;
      if (room <= 0) return { rows: out, truncated: true };
      // At most seen.size of the rows can be duplicates, so this limit leaves `room` new ones.
      const limit = room + seen.size;
      const rows = spec.reverse ? await revinclude(client, s, baseUrl, frontier, spec, limit) : await include(client, s, baseUrl, frontier, spec, limit);
      for (const r of rows) {
        const key = `${r.resource_type}/${r.id}`;
        if (seen.has(key)) continue;
        if (out.length >= MAX_INCLUDED) return { rows: out, truncated: true };
        seen.add(key);
        out.push(r);
        next.push({ rid: r.rid, type: r.resource_type, id: r.id });
      }
      if (rows.length >= limit) return { rows: out, truncated: true };
    }
    frontier = next;
  }
  return { rows: out, truncated: false };
}

const COLUMNS = 'r.rid::text AS rid, r.id, r.resource_type, r.content';

async function include(client: SqlClient, s: string, baseUrl: string, from: Node[], spec: IncludeSpec, limit: number): Promise<IncludedRow[]> {
  const rids = from.filter((n) => n.type === spec.source).map((n) => n.rid);
  if (rids.length === 0) return [];
  const params: unknown[] = [rids, spec.source, spec.params, `${baseUrl}/`, limit];
  const target = spec.target ? ` AND i.target_type = $${params.push(spec.target)}` : '';
  const sql =
    `SELECT DISTINCT ON (r.rid) ${COLUMNS}\n` +
    `FROM ${s}.sp_reference i JOIN ${s}.resource r ON r.resource_type = i.target_type AND r.id = i.target_id\n` +
    `WHERE i.rid = ANY($1::bigint[]) AND i.resource_type = $2 AND i.param = ANY($3::text[])${target}\n` +
    `  AND (i.target_url IS NULL OR i.target_url = $4 || i.target_type || '/' || i.target_id)\n` +
    `  AND NOT r.deleted\n` +
    `ORDER BY r.rid LIMIT $5`;
  return (await client.query<IncludedRow>(sql, params)).rows;
}

async function revinclude(client: SqlClient, s: string, baseUrl: string, from: Node[], spec: IncludeSpec, limit: number): Promise<IncludedRow[]> {
  const targets = spec.target ? from.filter((n) => n.type === spec.target) : from;
  if (targets.length === 0) return [];
  const sql =
    `SELECT DISTINCT ON (r.rid) ${COLUMNS}\n` +
    `FROM unnest($1::text[], $2::text[]) AS t(type, id)\n` +
    `JOIN ${s}.sp_reference i ON i.target_type = t.type AND i.target_id = t.id\n` +
    `JOIN ${s}.resource r ON r.rid = i.rid\n` +
    `WHERE i.resource_type = $3 AND i.param = ANY($4::text[])\n` +
    `  AND (i.target_url IS NULL OR i.target_url = $6 || i.target_type || '/' || i.target_id)\n` +
    `  AND NOT r.deleted\n` +
    `ORDER BY r.rid LIMIT $5`;
  const params = [targets.map((n) => n.type), targets.map((n) => n.id), spec.source, spec.params, limit, `${baseUrl}/`];
  return (await client.query<IncludedRow>(sql, params)).rows;
}
