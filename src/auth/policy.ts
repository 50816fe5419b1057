/**
 * Access policy: what a token may do, enforced in the interaction layer so that every way in —
 * REST, transaction and batch entries, compartment search, includes, history — is covered:
 *
 * - checkRoute (the HTTP dispatch, once per request): the scopes must name the type and interaction
 *   at all, operations need rights on every type they touch (route-rights.ts); else 403
 *   OperationOutcome (insufficient_scope); an instance operation on an unreachable instance: 404.
 * - vread / history → enforceVersion, filterHistory: older versions also by their own compartment.
 * - read / vread (read.ts) → enforceRead: 403 when the scopes do not cover the type; 404 when the
 *   resource is outside what they reach (another patient's compartment, another category): such a
 *   resource is indistinguishable from one that does not exist.
 * - search (search.ts) → restrictSearch adds the compartment condition and granular query to the
 *   search itself (no post-filtering, so paging and totals stay right); filterIncluded drops
 *   _include/_revinclude results the token cannot read.
 * - history (history.ts) → enforceHistory, filterHistory (entries of resources the token cannot see
 *   are left out; a page may then be shorter than _count).
 * - writes → the write rule below, on the one write path: create/update/delete rights on the type,
 *   and with a patient limit the written resource (and the one it replaces) must be in the
 *   patient's compartment; Subscription criteria must stay within the creator's reach.
 *
 * ctx.access undefined (AUTH_MODE=open, or the server's own work) means no limits.
 */
import type { Resource, Subscription } from 'fhir/r4.js';
import type { Request } from 'express';
import type { Route, RouteMatch } from '../http/fhir-router.js';
import { resourceTypes } from '../fhir/definitions.js';
import { FhirError, notFound } from '../fhir/outcome.js';
import type { InteractionContext } from '../interactions/context.js';
import type { SearchTarget } from '../interactions/search.js';
import { registerWriteRule, type WriteChange, type WriteRule } from '../interactions/write-rules.js';
import type { Writer } from '../interactions/writer.js';
import { extractIndexRows } from '../search/extract.js';
import type { SearchRegistry } from '../search/registry.js';
import type { StoredVersion } from '../store/resource-store.js';
import type { Access } from './access.js';
import { ADMIN_SCOPE, resourceScopes, type Action } from './scopes.js';
import { compartmentParams, hasAnyGrant, isUnrestricted, PATIENT_COMPARTMENT, typeAccess, type TypeAccess } from './type-access.js';
import { refusedConditional } from './conditional.js';
import { ADMIN_ONLY, rightsOf, SERVER_RECORDS } from './route-rights.js';
import { compartmentCondition, visibleIds, type Condition } from './visibility.js';
import { readClient } from '../interactions/context.js';
import { searchRegistryOf } from '../search/tenant-params.js';

export function forbidden(diagnostics: string): FhirError {
  return new FhirError(403, { severity: 'error', code: 'forbidden', diagnostics }, { 'WWW-Authenticate': 'Bearer realm="CareBridge", error="insufficient_scope"' });
}

/** Full rights: the administrator scope, or system/*.* (every action on every type, no query). */
export function isAdministrator(access: Access): boolean {
  if (access.scopes.includes(ADMIN_SCOPE)) return true;
  return resourceScopes(access.scopes).some((s) => s.context === 'system' && s.type === '*' && !s.query && (['c', 'r', 'u', 'd', 's'] as Action[]).every((a) => s.actions.has(a)));
}

/**
 * The per-request check at dispatch, from the route's row in ROUTE_RIGHTS (route-rights.ts): the
 * scopes must mention the interaction on the type (or the compartment search's type); operations
 * need every type they touch, and an instance-level operation's instance must be within reach
 * (404 otherwise, like a read); conditional writes need unlimited rights (conditional.ts). A route
 * without a row is refused to all but administrators (and fails test/auth/route-rights.test.ts).
 */
export async function checkRoute(ctx: InteractionContext, route: Pick<Route, 'interaction' | 'level'>, match: RouteMatch, req: Request): Promise<void> {
  const access = ctx.access;
  if (!access || route.interaction === 'capabilities') return;
  const { interaction } = route;
  const rights = rightsOf(interaction);
  if (rights === undefined || rights === ADMIN_ONLY) {
    if (!isAdministrator(access)) throw forbidden(`The ${interaction} operation needs the ${ADMIN_SCOPE} or system/*.* scope`);
    return;
  }
  const routeType = match.compartmentType ? (match.compartmentType === '*' ? undefined : match.compartmentType) : match.type;
  const operation = interaction.startsWith('$');
  for (const need of rights) {
    const type = need.type ?? routeType;
    // Operations read and write the store themselves: the type must really be reachable, not only named.
    const granted = operation && type ? need.actions.some((a) => typeAccess(access, type, a).allowed) : hasAnyGrant(access, type, need.actions);
    if (!granted) throw forbidden(`The granted scopes do not allow ${interaction}: it needs ${need.actions.join(' or ')} on ${type ?? 'some type'}`);
  }
  if (operation && route.level === 'instance' && match.type && match.id) {
    const need = rights.find((n) => (n.type ?? match.type) === match.type);
    if (need) await enforceReach(ctx, match.type, match.id, need.actions[0]!);
  }
  const records = Object.hasOwn(SERVER_RECORDS, interaction) ? SERVER_RECORDS[interaction] : undefined;
  if (records) serverRecords.set(access, new Set(records));
  const refused = refusedConditional(access, req, interaction, match.type, route.level);
  if (refused) throw forbidden(refused);
}

/**
 * Per request (keyed by its Access object, which the Writer's copies of the context share): the
 * types its operation files as the server (route-rights.ts SERVER_RECORDS), not checked by enforceWrite.
 */
const serverRecords = new WeakMap<Access, ReadonlySet<string>>();

/** The resource must be within what `action` reaches: 403 for a type out of scope, 404 for one out of reach. */
async function enforceReach(ctx: InteractionContext, type: string, id: string, action: Action): Promise<void> {
  if (!ctx.access) return;
  const reach = typeAccess(ctx.access, type, action);
  if (!reach.allowed) throw forbidden(`The granted scopes do not allow ${action} on ${type}`);
  if (isUnrestricted(reach)) return;
  if (!(await visibleIds(ctx, type, [id], reach)).has(id)) throw hidden(type);
}

function readAccess(access: Access, type: string): TypeAccess {
  const r = typeAccess(access, type, 'r');
  return r.allowed ? r : typeAccess(access, type, 's');
}

/** read / vread / instance history: 403 for a type the scopes do not cover, 404 for an unreachable resource. */
export async function enforceRead(ctx: InteractionContext, type: string, id: string): Promise<void> {
  if (!ctx.access) return;
  const access = typeAccess(ctx.access, type, 'r');
  if (!access.allowed) throw forbidden(`The granted scopes do not allow reading ${type}`);
  if (isUnrestricted(access)) return;
  if (!(await visibleIds(ctx, type, [id], access)).has(id)) throw hidden(type);
}

/** Out of reach looks like absent, and the message does not echo the id. */
function hidden(type: string): FhirError {
  return notFound(`No such ${type} within the granted access`);
}

/** Compartment search (GET Patient/[id]/[type]): under a patient limit only that patient's compartment. */
export function enforceCompartmentOwner(ctx: InteractionContext, compartmentType: string, id: string, targetType: string): void {
  if (!ctx.access || compartmentType !== PATIENT_COMPARTMENT) return;
  const types = targetType === '*' ? resourceTypes().filter((t) => compartmentParams(t)) : [targetType];
  for (const type of types) {
    const reach = typeAccess(ctx.access, type, 's');
    if (reach.patient !== undefined && reach.patient !== id) throw hidden(compartmentType);
  }
}

/** Narrow a search to what the token reaches (types, patient compartment, granular query). */
export function restrictSearch(ctx: InteractionContext, target: SearchTarget, pairs: Array<[string, string]>): { target: SearchTarget; pairs: Array<[string, string]> } {
  if (!ctx.access) return { target, pairs };
  const access = ctx.access;
  const requested = target.scope.types === 'all' ? resourceTypes() : target.scope.types;
  const byType = new Map(requested.map((t) => [t, typeAccess(access, t, 's')] as const));
  const allowed = requested.filter((t) => byType.get(t)!.allowed);
  if (target.scope.types !== 'all' && allowed.length < requested.length) {
    throw forbidden(`The granted scopes do not allow searching ${requested.filter((t) => !byType.get(t)!.allowed).join(', ')}`);
  }
  if (allowed.length === 0) throw forbidden('The granted scopes do not allow searching any type');
  if (target.scope.types === 'all' && allowed.every((t) => isUnrestricted(byType.get(t)!))) {
    if (allowed.length === requested.length) return { target, pairs };
  }
  let extra: Array<[string, string]> = [];
  const granular = allowed.filter((t) => byType.get(t)!.queries);
  if (granular.length) {
    if (allowed.length > 1) throw forbidden(`The scopes for ${granular.join(', ')} are limited by a query: search one type at a time`);
    const queries = byType.get(allowed[0]!)!.queries!;
    const has = (q: Array<[string, string]>) => q.every(([k, v]) => pairs.some(([pk, pv]) => pk === k && pv === v));
    const chosen = queries.length === 1 ? queries[0]! : queries.find(has);
    if (!chosen) throw forbidden(`The scopes for ${allowed[0]} allow several queries: search with one of ${queries.map((q) => new URLSearchParams(q).toString()).join(' | ')}`);
    extra = chosen;
  }
  const limited = allowed.filter((t) => byType.get(t)!.patient !== undefined);
  const conditions: Condition[] = [];
  if (limited.length) {
    const patient = byType.get(limited[0]!)!.patient!;
    const free = allowed.filter((t) => byType.get(t)!.patient === undefined);
    const member = compartmentCondition(patient, limited);
    conditions.push(free.length ? (b, s) => `(r.resource_type = ANY(${b.add(free)}::text[]) OR ${member(b, s)})` : member);
  }
  const previous = target.scope.conditions;
  return {
    target: { ...target, scope: { types: allowed, conditions: (b, s) => [...(previous?.(b, s) ?? []), ...conditions.map((c) => c(b, s))] } },
    pairs: [...pairs, ...extra],
  };
}

/** Keep the rows (included resources, history versions) the token may read. */
export async function filterVisible<T extends { resource_type?: string; resourceType?: string; id: string }>(ctx: InteractionContext, rows: T[]): Promise<T[]> {
  if (!ctx.access || rows.length === 0) return rows;
  const typeOf = (r: T) => (r.resource_type ?? r.resourceType)!;
  const visible = new Map<string, Set<string>>();
  for (const type of new Set(rows.map(typeOf))) {
    const ids = rows.filter((r) => typeOf(r) === type).map((r) => r.id);
    visible.set(type, await visibleIds(ctx, type, ids, readAccess(ctx.access, type)));
  }
  return rows.filter((r) => visible.get(typeOf(r))!.has(r.id));
}

/** history: the type (and instance) must be readable; the entries are then filtered by filterVisible. */
export async function enforceHistory(ctx: InteractionContext, target: { resourceType?: string; id?: string }): Promise<void> {
  if (!ctx.access || !target.resourceType) return;
  if (target.id) return enforceRead(ctx, target.resourceType, target.id);
  if (!typeAccess(ctx.access, target.resourceType, 'r').allowed) throw forbidden(`The granted scopes do not allow reading ${target.resourceType}`);
}

export async function filterHistory(ctx: InteractionContext, rows: StoredVersion[]): Promise<StoredVersion[]> {
  // The resource must be visible now AND each version must have been in the patient's compartment.
  return (await filterVisible(ctx, rows)).filter((v) => versionInReach(ctx, v));
}

/** A version's own content is within the token's patient limit (deletions carry no data). */
function versionInReach(ctx: InteractionContext, v: StoredVersion): boolean {
  if (!ctx.access || v.content === null) return true;
  const reach = readAccess(ctx.access, v.resourceType);
  if (reach.patient === undefined || !compartmentParams(v.resourceType)) return true;
  return inCompartment(JSON.parse(v.content) as Resource, reach.patient, searchRegistryOf(ctx.store));
}

/**
 * vread (after enforceRead, which checked the resource as it is now): an older version is checked
 * against its OWN compartment — a resource moved from one patient to another must not show the
 * first patient's version to the second. Under a granular (query) limit only the current version
 * is readable: the search engine that decides the query sees current versions only.
 */
export async function enforceVersion(ctx: InteractionContext, v: StoredVersion | undefined): Promise<void> {
  if (!ctx.access || !v) return;
  const reach = readAccess(ctx.access, v.resourceType);
  if (isUnrestricted(reach)) return;
  if (!versionInReach(ctx, v)) throw hidden(v.resourceType);
  if (reach.queries) {
    const current = await ctx.store.current(readClient(ctx), v.resourceType, v.id);
    if (current?.versionId !== v.versionId) throw hidden(v.resourceType);
  }
}

// Writes ---------------------------------------------------------------------------------------

/** Whether `resource` is in Patient/[patient]'s compartment, from its own references (no database). */
export function inCompartment(resource: Resource, patient: string, registry?: SearchRegistry): boolean {
  if (resource.resourceType === PATIENT_COMPARTMENT && resource.id === patient) return true;
  const params = compartmentParams(resource.resourceType);
  if (!params) return false;
  return extractIndexRows(resource, registry).some(
    (row) => row.table === 'sp_reference' && params.includes(row.param) && row.values[0] === PATIENT_COMPARTMENT && row.values[1] === patient,
  );
}

function checkSubscriptionCriteria(access: Access, subscription: Subscription): void {
  const criteria = subscription.criteria ?? '';
  const [type, query = ''] = criteria.split('?', 2) as [string, string?];
  const reach = typeAccess(access, type, 's');
  if (!reach.allowed) throw forbidden(`Subscription.criteria: the granted scopes do not allow searching ${type}`);
  if (reach.queries && !reach.queries.some((q) => q.every(([k, v]) => new URLSearchParams(query).getAll(k).includes(v)))) {
    throw forbidden(`Subscription.criteria must include the query the scopes limit ${type} to`);
  }
  if (reach.patient === undefined) return;
  // Limited to a patient: the criteria must name that patient through a compartment parameter.
  const params = compartmentParams(type) ?? [];
  const names = new Set([reach.patient, `${PATIENT_COMPARTMENT}/${reach.patient}`]);
  const bound = [...new URLSearchParams(query)].some(([k, v]) => (params.includes(k.split(':')[0]!) || (type === PATIENT_COMPARTMENT && k === '_id')) && names.has(v));
  if (!bound) throw forbidden(`Subscription.criteria must be limited to Patient/${reach.patient} (e.g. ${type}?${params[0] ?? '_id'}=Patient/${reach.patient})`);
}

async function enforceWrite(writer: Writer, change: WriteChange): Promise<void> {
  const access = writer.ctx.access;
  if (!access) return;
  const { resourceType: type } = change;
  if (serverRecords.get(access)?.has(type)) return; // filed by the operation as the server
  const action: Action = change.action === 'delete' ? 'd' : change.previous ? 'u' : 'c';
  const reach = typeAccess(access, type, action);
  if (type === 'Subscription' && change.resource) {
    // Subscriptions hold no patient data: who may create one is decided by what it would watch.
    if (!hasAnyGrant(access, type, [action])) throw forbidden(`The granted scopes do not allow writing ${type}`);
    checkSubscriptionCriteria(access, change.resource as Subscription);
    return;
  }
  if (!reach.allowed) throw forbidden(`The granted scopes do not allow ${change.action} on ${type}`);
  if (reach.queries) throw forbidden(`The scopes for ${type} are limited by a query; writes need a scope without one`);
  if (reach.patient === undefined) return;
  if (change.previous && !inCompartment(change.previous, reach.patient, writer.registry)) throw hidden(type);
  if (change.resource && !inCompartment(change.resource, reach.patient, writer.registry)) {
    throw forbidden(`${type}/${change.id} would not be in the compartment of Patient/${reach.patient}, the only patient this token reaches`);
  }
}

/** Owner filtering for Subscriptions (src/subscriptions/security.ts mayRead): may `owner` read this resource? */
export function ownerMayRead(owner: Access | undefined, resourceType: string, resource: Resource | undefined): boolean {
  if (!owner) return true;
  const reach = readAccess(owner, resourceType);
  if (!reach.allowed) return false;
  if (reach.queries) return false; // granular limits need the search engine: not notified (never too much)
  if (reach.patient === undefined) return true;
  return resource !== undefined && inCompartment(resource, reach.patient);
}


/**
 * Check every requested write (idempotent). Registered only with AUTH_MODE=smart: with auth off
 * there is nothing to check, and every update would pay for parsing the previous version.
 * Requested writes only: what other rules write in consequence is the server's doing.
 */
let accessPolicyRule: WriteRule | undefined;
export function registerAccessPolicy(): void {
  accessPolicyRule ??= { name: 'access-policy', types: resourceTypes(), apply: enforceWrite, requestedOnly: true };
  registerWriteRule(accessPolicyRule);
}
