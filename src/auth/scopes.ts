/**
 * SMART scopes (hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html), v1 and v2:
 *
 *   patient/*.read            v1: read = search + read (rs), write = create + update + delete (cud), * = all
 *   user/Observation.write
 *   patient/Observation.rs    v2: any ordered subset of c r u d s
 *   patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory
 *                             v2 granular: only resources that also match the query
 *
 * Everything else (openid, fhirUser, launch, launch/patient, offline_access, online_access, admin)
 * is a non-resource scope and is kept as is.
 */

export type Action = 'c' | 'r' | 'u' | 'd' | 's';
export type ScopeContext = 'patient' | 'user' | 'system';

export interface ResourceScope {
  context: ScopeContext;
  /** A resource type or '*'. */
  type: string;
  actions: ReadonlySet<Action>;
  /** v2 granular restriction: search parameters every permitted resource must match. */
  query?: Array<[string, string]>;
  text: string;
}

/** The scope of the bootstrap administrator: client and user registration (POST /admin/...). */
export const ADMIN_SCOPE = 'admin';

const SCOPE_RE = /^(patient|user|system)\/([A-Za-z]+|\*)\.(read|write|\*|c?r?u?d?s?)(\?.+)?$/;

export function parseResourceScope(text: string): ResourceScope | undefined {
  const m = SCOPE_RE.exec(text);
  if (!m || m[3] === '') return undefined;
  const [, context, type, perm, q] = m;
  const v1: Record<string, Action[]> = { read: ['r', 's'], write: ['c', 'u', 'd'], '*': ['c', 'r', 'u', 'd', 's'] };
  const actions = new Set<Action>(v1[perm!] ?? ([...perm!] as Action[]));
  // Granular queries are a v2 feature: a v1 permission with a query is not a scope we know.
  if (q && v1[perm!]) return undefined;
  const query = q ? [...new URLSearchParams(q.slice(1))] : undefined;
  return { context: context as ScopeContext, type: type!, actions, query: query?.length ? query : undefined, text };
}

export function splitScopes(scope: string | undefined | null): string[] {
  return [...new Set((scope ?? '').split(/\s+/).filter(Boolean))];
}

export function resourceScopes(scopes: readonly string[]): ResourceScope[] {
  return scopes.map(parseResourceScope).filter((s): s is ResourceScope => s !== undefined);
}

/** The scopes among `scopes` that grant `action` on `type`. */
export function grantsFor(scopes: readonly ResourceScope[], type: string, action: Action): ResourceScope[] {
  return scopes.filter((s) => (s.type === '*' || s.type === type) && s.actions.has(action));
}

/**
 * Narrow what a client asks for to what it is registered for. A requested scope survives when a
 * registered scope covers it: same context (or the registration is `user/` and the request is
 * `patient/`, which is narrower), same or wildcard type, a subset of the actions, and the
 * registration has no query or the same one. Non-resource scopes must be registered verbatim.
 */
export function allowedScopes(requested: readonly string[], registered: readonly string[]): string[] {
  const reg = resourceScopes(registered);
  return requested.filter((text) => {
    const want = parseResourceScope(text);
    if (!want) return registered.includes(text);
    return reg.some(
      (r) =>
        (r.context === want.context || (r.context === 'user' && want.context === 'patient')) &&
        (r.type === '*' || r.type === want.type) &&
        [...want.actions].every((a) => r.actions.has(a)) &&
        (!r.query || JSON.stringify(r.query) === JSON.stringify(want.query)),
    );
  });
}
