/**
 * Which resources a limited token can see, decided in the database: the patient-compartment
 * condition added to searches, and the check of given ids (reads, included resources, history
 * entries) with the same condition plus any granular query.
 */
import { Binder } from '../search/query-sql.js';
import type { InteractionContext } from '../interactions/context.js';
import { readClient } from '../interactions/context.js';
import { runSearch } from '../interactions/search.js';
import { quoteIdent } from '../store/schema.js';
import { compartmentParams, isUnrestricted, PATIENT_COMPARTMENT, type TypeAccess } from './type-access.js';

export type Condition = (b: Binder, schema: string) => string;

/**
 * `r` is in Patient/[patient]'s compartment, for rows of `types` (all compartment types): one of
 * the parameters the CompartmentDefinition names for r's type refers to the patient, or r is the
 * patient itself.
 */
export function compartmentCondition(patient: string, types: readonly string[]): Condition {
  const memberships = types.flatMap((t) => (compartmentParams(t) ?? []).map((p) => `${t}:${p}`));
  return (b, s) => {
    const owner = b.add(PATIENT_COMPARTMENT);
    const id = b.add(patient);
    const member =
      `EXISTS (SELECT 1 FROM ${s}.sp_reference c WHERE c.rid = r.rid AND (c.resource_type || ':' || c.param) = ANY(${b.add(memberships)}::text[])` +
      ` AND c.target_type = ${owner} AND c.target_id = ${id})`;
    return types.includes(PATIENT_COMPARTMENT) ? `(${member} OR (r.resource_type = ${owner} AND r.id = ${id}))` : member;
  };
}

const CHUNK = 500;

/** The ids among `ids` (all of type `type`, current and not deleted) that `access` lets the caller see. */
export async function visibleIds(ctx: InteractionContext, type: string, ids: readonly string[], access: TypeAccess): Promise<Set<string>> {
  const unique = [...new Set(ids)];
  if (!access.allowed || unique.length === 0) return new Set();
  if (isUnrestricted(access)) return new Set(unique);
  const seen = new Set<string>();
  for (let i = 0; i < unique.length; i += CHUNK) {
    const chunk = unique.slice(i, i + CHUNK);
    if (!access.queries) {
      const s = quoteIdent(ctx.store.schema);
      const b = new Binder();
      const cond = compartmentCondition(access.patient!, [type])(b, s);
      const sql = `SELECT r.id FROM ${s}.resource r WHERE r.resource_type = ${b.add(type)} AND r.id = ANY(${b.add(chunk)}::text[]) AND NOT r.deleted AND ${cond}`;
      for (const row of (await readClient(ctx).query<{ id: string }>(sql, b.params)).rows) seen.add(row.id);
      continue;
    }
    // Granular scopes: the search engine decides what matches each query (the union is visible).
    const internal: InteractionContext = { ...ctx, access: undefined };
    const conditions = access.patient !== undefined ? [compartmentCondition(access.patient, [type])] : [];
    for (const query of access.queries) {
      const pairs: Array<[string, string]> = [['_id', chunk.join(',')], ...query, ['_elements', 'id'], ['_count', String(chunk.length)]];
      const result = await runSearch(internal, { path: type, scope: { types: [type], conditions: (b, s) => conditions.map((c) => c(b, s)) } }, pairs, { strict: false });
      const bundle = JSON.parse(result.body as string) as { entry?: Array<{ resource?: { resourceType?: string; id?: string } }> };
      for (const e of bundle.entry ?? []) if (e.resource?.resourceType === type && e.resource.id) seen.add(e.resource.id);
    }
  }
  return seen;
}
