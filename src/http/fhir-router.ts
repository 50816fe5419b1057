/**
 * The FHIR REST routes as a table: each row is an interaction (its CapabilityStatement code), the
 * HTTP method and path shape that reach it, and the interaction-layer call. The table is also
 * what the CapabilityStatement is generated from.
 */
import type { Request } from 'express';
import { isResourceType } from '../fhir/definitions.js';
import { FhirError, notFound } from '../fhir/outcome.js';
import { capabilityStatement } from '../interactions/capabilities.js';
import { compartmentSearch } from '../interactions/compartment.js';
import type { InteractionContext, InteractionResult } from '../interactions/context.js';
import { parseVersionTag } from '../interactions/context.js';
import { createResource } from '../interactions/create.js';
import { conditionalDelete, deleteResource } from '../interactions/delete.js';
import { history } from '../interactions/history.js';
import { patchResource } from '../interactions/patch.js';
import { readResource, vreadResource } from '../interactions/read.js';
import { searchResources, systemSearch } from '../interactions/search.js';
import { processBundle } from '../interactions/transaction.js';
import { conditionalUpdate, updateResource } from '../interactions/update.js';
import { validateOperation } from '../interactions/validate.js';
import { reindexOperation, reindexStatusOperation } from '../interactions/reindex.js';
import { shapeReadResult } from '../search/summary.js';
import { APPOINTMENT_ROUTES } from '../workflows/appointments-routes.js';
import { PRESCRIPTION_ROUTES } from '../workflows/medication-routes.js';
import { SUBSCRIPTION_ROUTES } from '../subscriptions/routes.js';
import { readBody } from './negotiate.js';
import { preferences } from './respond.js';

export interface RouteMatch {
  type?: string;
  id?: string;
  vid?: string;
  /** The type searched in a compartment (or '*'): GET [type]/[id]/[compartmentType]. */
  compartmentType?: string;
}

export interface Route {
  /** CapabilityStatement interaction code, or '$name' for an operation. */
  interaction: string;
  level: 'instance' | 'type' | 'system';
  method: string;
  /** Path segments: ':type', ':id', ':vid', ':compartmentType' or literals. */
  path: string[];
  write?: boolean;
  /** Operations: their OperationDefinition ('OperationDefinition/[id]' is made absolute in the CapabilityStatement). */
  definition?: string;
  /** A media type the route answers besides FHIR JSON (Accept may ask for it): $pdf → application/pdf. */
  produces?: string;
  handle(ctx: InteractionContext, req: Request, m: RouteMatch): Promise<InteractionResult>;
}

const query = (req: Request) => new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');
const queryText = (req: Request) => (req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');
const ifMatch = (req: Request) => parseVersionTag(req.headers['if-match']);
const fhirBody = (req: Request) => readBody(req).value;
/** The FHIR body if there is one (operations whose input is optional). */
const optionalBody = (req: Request) => (Buffer.isBuffer(req.body) && req.body.length > 0 ? fhirBody(req) : undefined);

function conditionOf(req: Request, what: string): string {
  const q = queryText(req);
  if (!q) throw new FhirError(400, { severity: 'error', code: 'required', diagnostics: `${what} needs an id in the url or search parameters` });
  return q;
}

/** Search parameters from the query string, plus the form body of POST _search. */
function searchPairs(req: Request): Array<[string, string]> {
  const pairs = [...query(req)];
  if (req.method === 'POST' && req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
    const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    pairs.push(...new URLSearchParams(raw));
  }
  return pairs;
}

function patchBody(req: Request) {
  const { kind, value } = readBody(req, ['json-patch', 'fhir']);
  return { format: kind === 'json-patch' ? ('json-patch' as const) : ('fhirpath-patch' as const), value };
}

export const ROUTES: Route[] = [
  // Workflow rows first: their literal paths must win over the generic [type]/[id] rows.
  ...PRESCRIPTION_ROUTES,
  ...APPOINTMENT_ROUTES,
  // Subscription operations (backport IG $status, $events): src/subscriptions/routes.ts.
  ...SUBSCRIPTION_ROUTES,
  { interaction: 'capabilities', level: 'system', method: 'GET', path: ['metadata'], handle: async (ctx) => ({ status: 200, body: capabilityStatement(ctx.baseUrl, supportedInteractions(), SOFTWARE_VERSION) }) },
  { interaction: 'transaction', level: 'system', method: 'POST', path: [], write: true, handle: (ctx, req) => processBundle(ctx, fhirBody(req), preferences(req).return ?? 'minimal') },
  { interaction: 'batch', level: 'system', method: 'POST', path: [], write: true, handle: (ctx, req) => processBundle(ctx, fhirBody(req), preferences(req).return ?? 'minimal') },
  { interaction: 'history-system', level: 'system', method: 'GET', path: ['_history'], handle: (ctx, req) => history(ctx, {}, query(req)) },
  { interaction: 'search-system', level: 'system', method: 'GET', path: [], handle: (ctx, req) => systemSearch(ctx, searchPairs(req), { strict: preferences(req).strict }) },
  { interaction: 'search-system', level: 'system', method: 'POST', path: ['_search'], handle: (ctx, req) => systemSearch(ctx, searchPairs(req), { strict: preferences(req).strict }) },
  { interaction: 'search-type', level: 'type', method: 'GET', path: [':type'], handle: (ctx, req, m) => searchResources(ctx, m.type, searchPairs(req), { strict: preferences(req).strict }) },
  { interaction: 'search-type', level: 'type', method: 'POST', path: [':type', '_search'], handle: (ctx, req, m) => searchResources(ctx, m.type, searchPairs(req), { strict: preferences(req).strict }) },
  { interaction: 'create', level: 'type', method: 'POST', path: [':type'], write: true, handle: (ctx, req, m) => createResource(ctx, m.type!, fhirBody(req), req.headers['if-none-exist'] as string | undefined) },
  { interaction: 'update', level: 'type', method: 'PUT', path: [':type'], write: true, handle: (ctx, req, m) => conditionalUpdate(ctx, m.type!, conditionOf(req, 'A conditional update'), fhirBody(req), ifMatch(req)) },
  { interaction: 'delete', level: 'type', method: 'DELETE', path: [':type'], write: true, handle: (ctx, req, m) => conditionalDelete(ctx, m.type!, conditionOf(req, 'A conditional delete')) },
  { interaction: 'patch', level: 'type', method: 'PATCH', path: [':type'], write: true, handle: (ctx, req, m) => { const p = patchBody(req); return patchResource(ctx, m.type!, { query: conditionOf(req, 'A conditional patch') }, p.format, p.value, ifMatch(req)); } },
  { interaction: 'history-type', level: 'type', method: 'GET', path: [':type', '_history'], handle: (ctx, req, m) => history(ctx, { resourceType: m.type }, query(req)) },
  { interaction: '$validate', level: 'type', method: 'POST', path: [':type', '$validate'], handle: (ctx, req, m) => validateOperation(ctx, m.type!, fhirBody(req)) },
  { interaction: '$reindex', level: 'system', method: 'POST', path: ['$reindex'], handle: (ctx, req) => reindexOperation(ctx, undefined, { body: optionalBody(req), query: query(req) }) },
  { interaction: '$reindex', level: 'type', method: 'POST', path: [':type', '$reindex'], handle: (ctx, req, m) => reindexOperation(ctx, m.type, { body: optionalBody(req), query: query(req) }) },
  { interaction: '$reindex', level: 'system', method: 'GET', path: ['$reindex', ':id'], handle: (ctx, _req, m) => reindexStatusOperation(ctx, m.id!) },
  { interaction: 'read', level: 'instance', method: 'GET', path: [':type', ':id'], handle: async (ctx, req, m) => shapeReadResult(await readResource(ctx, m.type!, m.id!), query(req)) },
  { interaction: 'update', level: 'instance', method: 'PUT', path: [':type', ':id'], write: true, handle: (ctx, req, m) => updateResource(ctx, m.type!, m.id!, fhirBody(req), ifMatch(req)) },
  { interaction: 'delete', level: 'instance', method: 'DELETE', path: [':type', ':id'], write: true, handle: (ctx, req, m) => deleteResource(ctx, m.type!, m.id!, ifMatch(req)) },
  { interaction: 'patch', level: 'instance', method: 'PATCH', path: [':type', ':id'], write: true, handle: (ctx, req, m) => { const p = patchBody(req); return patchResource(ctx, m.type!, { id: m.id }, p.format, p.value, ifMatch(req)); } },
  { interaction: 'search-type', level: 'instance', method: 'GET', path: [':type', ':id', ':compartmentType'], handle: (ctx, req, m) => compartmentSearch(ctx, m.type!, m.id!, m.compartmentType!, searchPairs(req), { strict: preferences(req).strict }) },
  { interaction: 'search-type', level: 'instance', method: 'POST', path: [':type', ':id', ':compartmentType', '_search'], handle: (ctx, req, m) => compartmentSearch(ctx, m.type!, m.id!, m.compartmentType!, searchPairs(req), { strict: preferences(req).strict }) },
  { interaction: 'history-instance', level: 'instance', method: 'GET', path: [':type', ':id', '_history'], handle: (ctx, req, m) => history(ctx, { resourceType: m.type, id: m.id }, query(req)) },
  { interaction: 'vread', level: 'instance', method: 'GET', path: [':type', ':id', '_history', ':vid'], handle: async (ctx, req, m) => shapeReadResult(await vreadResource(ctx, m.type!, m.id!, m.vid!), query(req)) },
  { interaction: '$validate', level: 'instance', method: 'POST', path: [':type', ':id', '$validate'], handle: (ctx, req, m) => validateOperation(ctx, m.type!, fhirBody(req), m.id) },
];

export const SOFTWARE_VERSION = '0.1.0';

export function supportedInteractions() {
  const codes = (level: Route['level']) => [...new Set(ROUTES.filter((r) => r.level === level && !r.interaction.startsWith('$')).map((r) => r.interaction))];
  return {
    type: [...new Set([...codes('instance'), ...codes('type')])],
    system: codes('system').filter((c) => c !== 'capabilities'),
    typeOperations: [...new Set(ROUTES.filter((r) => r.interaction.startsWith('$')).map((r) => r.interaction.slice(1)))].map((name) => ({
      name,
      ...operationScope(name),
    })),
  };
}

/** An operation's definition and, for operations routed on literal type names only, those types. */
function operationScope(name: string): { definition: string; types?: string[] } {
  const routes = ROUTES.filter((r) => r.interaction === `$${name}`);
  const definition = routes.find((r) => r.definition)?.definition ?? `http://hl7.org/fhir/OperationDefinition/Resource-${name}`;
  const literal = routes.every((r) => r.path[0] !== ':type' && !r.path[0]!.startsWith('$'));
  return literal ? { definition, types: [...new Set(routes.map((r) => r.path[0]!))] } : { definition };
}

const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;

/** Find the route for a method and path; 404 for unknown types, 405 for a known path with another method. */
export function matchRoute(method: string, segments: string[], body: unknown): { route: Route; match: RouteMatch } {
  const candidates: { route: Route; match: RouteMatch }[] = [];
  for (const route of ROUTES) {
    if (route.path.length !== segments.length) continue;
    const match: RouteMatch = {};
    let ok = true;
    route.path.forEach((p, i) => {
      const s = segments[i]!;
      if (!ok) return;
      if (p === ':type') {
        if (s.startsWith('$') || s.startsWith('_') || s === 'metadata') ok = false;
        else match.type = s;
      } else if (p === ':id') {
        if (s.startsWith('$') || s.startsWith('_')) ok = false;
        else match.id = s;
      } else if (p === ':compartmentType') {
        if (s !== '*' && !isResourceType(s)) ok = false;
        else match.compartmentType = s;
      } else if (p === ':vid') match.vid = s;
      else if (p !== s) ok = false;
      // A literal type name (Appointment/$find) is the route's type too: scopes and audit read it.
      else if (i === 0 && isResourceType(p)) match.type = p;
    });
    if (ok) candidates.push({ route, match });
  }
  if (candidates.length === 0) throw notFound(`No FHIR interaction at /${segments.join('/')}`);
  const type = candidates[0]!.match.type;
  if (type !== undefined && !isResourceType(type)) throw notFound(`Unknown resource type '${type}'`);
  const id = candidates[0]!.match.id;
  if (id !== undefined && !ID_RE.test(id)) throw new FhirError(400, { severity: 'error', code: 'invalid', diagnostics: `'${id}' is not a valid FHIR id` });
  let found = candidates.filter((c) => c.route.method === method || (method === 'HEAD' && c.route.method === 'GET'));
  if (found.length > 1 && segments.length === 0) {
    // POST to the base: transaction or batch, by Bundle.type.
    const kind = (body as { type?: string } | undefined)?.type === 'batch' ? 'batch' : 'transaction';
    found = found.filter((c) => c.route.interaction === kind);
  }
  if (found.length === 0) {
    const allowed = [...new Set(candidates.map((c) => c.route.method))].join(', ');
    throw new FhirError(405, { severity: 'error', code: 'not-supported', diagnostics: `${method} is not supported at /${segments.join('/')}; allowed: ${allowed}` }, { Allow: allowed });
  }
  return found[0]!;
}
