/**
 * batch and transaction Bundles (bundle.html#transaction, http.html#transaction).
 * A transaction runs in ONE database transaction: identities are resolved first (conditional
 * creates and updates under their condition locks), references rewritten, then entries run in
 * the spec's order DELETE, POST, PUT/PATCH, GET; any failure rolls everything back.
 * A batch runs each entry in its own database transaction and reports each outcome.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Binary, Bundle, BundleEntry, Resource } from 'fhir/r4.js';
import { badRequest, FhirError, outcome, preconditionFailed } from '../fhir/outcome.js';
import { eachReference } from '../fhir/references.js';
import { bundleText, type BundleEntryText } from './bundle-json.js';
import { etag, type InteractionContext, type InteractionResult } from './context.js';
import { type EntryTarget, parseEntryUrl } from './entry-url.js';
import { findMatches } from './matching.js';
import { executeRead } from './entry-read.js';
import { applyPatch, type PatchFormat } from './patch.js';
import { parseJson } from './resource-json.js';
import { writeResult } from './write-result.js';
import { Writer, type WriteOutcome } from './writer.js';
import { auditBatchFailure, auditBatchRead, entryEntities } from '../audit/bundle-audit.js';
import { unwrittenEntities } from '../audit/write-audit.js';

export type ReturnPreference = 'minimal' | 'representation' | 'OperationOutcome';

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const ORDER: Record<Method, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

interface Entry {
  index: number;
  method: Method;
  url: string;
  target: EntryTarget;
  fullUrl?: string;
  resource?: Resource;
  ifNoneExist?: string;
  ifMatch?: number;
  /** Transaction: the id this entry's resource will have (new or found by its condition). */
  id?: string;
  /** Transaction: a conditional create that found its resource. */
  existing?: WriteOutcome;
}

const where = (e: { index: number }) => `Bundle.entry[${e.index}]`;

function parseEntry(raw: BundleEntry, index: number, baseUrl: string): Entry {
  const at = `Bundle.entry[${index}]`;
  try {
    const rawMethod: unknown = raw.request?.method;
    const method = typeof rawMethod === 'string' ? (rawMethod.toUpperCase() as Method) : undefined;
    if (!method || !(method in ORDER)) throw badRequest('request.method must be GET, HEAD, POST, PUT, PATCH or DELETE', [`${at}.request.method`]);
    const url: unknown = raw.request?.url;
    if (typeof url !== 'string' || url === '') throw badRequest('request.url is required', [`${at}.request.url`]);
    const target = parseEntryUrl(url, baseUrl);
    const needsBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
    if (needsBody && !raw.resource) throw badRequest(`a ${method} entry needs a resource`, [`${at}.resource`]);
    if (method !== 'GET' && method !== 'HEAD' && !target.resourceType) throw badRequest(`a ${method} entry needs a resource type in its url`, [`${at}.request.url`]);
    if (method === 'POST' && (target.id || target.query)) throw badRequest('a POST entry url is the resource type alone', [`${at}.request.url`]);
    if ((method === 'PUT' || method === 'DELETE' || method === 'PATCH') && !target.id && target.query === undefined) {
      throw badRequest(`a ${method} entry url needs an id or a search condition`, [`${at}.request.url`]);
    }
    const ifMatch = raw.request?.ifMatch;
    const version = ifMatch === undefined ? undefined : Number(/^(?:W\/)?"?(\d+)"?$/.exec(ifMatch.trim())?.[1] ?? Number.NaN);
    if (version !== undefined && Number.isNaN(version)) throw badRequest('request.ifMatch must be a version ETag such as W/"3"', [`${at}.request.ifMatch`]);
    return { index, method, url, target, fullUrl: raw.fullUrl, resource: raw.resource, ifNoneExist: raw.request?.ifNoneExist, ifMatch: version };
  } catch (error) {
    throw error instanceof FhirError ? error.withContext(at) : error;
  }
}

function patchFormat(body: Resource): { format: PatchFormat; patch: unknown } {
  if (body.resourceType === 'Parameters') return { format: 'fhirpath-patch', patch: body };
  const binary = body as Binary;
  if (binary.resourceType === 'Binary' && binary.contentType?.startsWith('application/json-patch+json') && binary.data) {
    return { format: 'json-patch', patch: parseJson(Buffer.from(binary.data, 'base64').toString('utf8'), 'JSON Patch in the Binary') };
  }
  throw badRequest('a PATCH entry carries a FHIRPath Patch Parameters or a Binary with application/json-patch+json');
}

const isConditionalReference = (ref: string) => /^[A-Za-z]+\?/.test(ref);

/**
 * Replace references by fullUrl and conditional references ('Patient?identifier=…') by Type/id.
 * Conditional ones are looked up first (once each); the rewrite itself is a synchronous walk.
 */
async function rewriteReferences(
  w: Writer,
  resource: unknown,
  ids: Map<string, string>,
  inTransaction: boolean,
  resolved: Map<string, string> = new Map(),
): Promise<void> {
  const pending = new Set<string>();
  eachReference(resource, (ref) => {
    if (!ids.has(ref) && !resolved.has(ref) && isConditionalReference(ref)) pending.add(ref);
    return undefined;
  });
  for (const ref of pending) resolved.set(ref, await resolveConditionalReference(w, ref));
  eachReference(resource, (ref) => {
    const mapped = ids.get(ref) ?? resolved.get(ref);
    if (mapped) return mapped;
    if (inTransaction && ref.startsWith('urn:uuid:')) throw badRequest(`The reference '${ref}' matches no entry's fullUrl`);
    return undefined;
  });
}

async function resolveConditionalReference(w: Writer, reference: string): Promise<string> {
  const type = reference.slice(0, reference.indexOf('?'));
  const matches = await findMatches(w.tx, w.ctx.store.schema, type, reference.slice(reference.indexOf('?') + 1), 2, w.registry);
  if (matches.length !== 1) throw preconditionFailed(`The conditional reference '${reference}' matches ${matches.length} resources; it must match exactly one`);
  return `${type}/${matches[0]!.id}`;
}

function responseEntry(ctx: InteractionContext, result: InteractionResult, prefer: ReturnPreference): BundleEntryText {
  const v = result.version;
  const entry: BundleEntryText = {
    response: {
      status: `${result.status} ${STATUS_CODES[result.status] ?? ''}`.trim(),
      ...(v && result.status < 300 && (result.created || v.versionId > 1 || result.status === 200)
        ? { location: `${v.resourceType}/${v.id}/_history/${v.versionId}` } : {}),
      ...(v ? { etag: etag(v.versionId), lastModified: v.lastUpdated } : {}),
    },
  };
  if (v && !v.deleted) entry.fullUrl = `${ctx.baseUrl}/${v.resourceType}/${v.id}`;
  if (result.body !== undefined && (prefer === 'representation' || !v)) entry.resource = result.body;
  if (prefer === 'OperationOutcome' && v) entry.response!.outcome = outcome([{ severity: 'information', code: 'informational', diagnostics: `${result.status} ${STATUS_CODES[result.status]}` }]);
  return entry;
}

async function executeWrite(w: Writer, e: Entry): Promise<WriteOutcome> {
  const type = e.target.resourceType!;
  switch (e.method) {
    case 'DELETE':
      return e.target.id ? w.delete(type, e.target.id, { ifMatch: e.ifMatch }) : w.conditionalDelete(type, e.target.query!);
    case 'POST':
      return e.existing ?? w.create(w.check(e.resource, type), { ifNoneExist: e.ifNoneExist });
    case 'PUT': {
      const resource = w.check(e.resource, type);
      const id = e.id ?? e.target.id;
      if (id === undefined) return w.conditionalUpdate(resource, e.target.query!, { ifMatch: e.ifMatch });
      if (resource.id !== undefined && resource.id !== id) throw badRequest(`The resource id '${resource.id}' does not match the url id '${id}'`);
      return w.update({ ...resource, id }, id, { ifMatch: e.ifMatch });
    }
    case 'PATCH': {
      const { format, patch } = patchFormat(e.resource!);
      return applyPatch(w, type, { id: e.target.id, query: e.target.query }, format, patch, e.ifMatch);
    }
    default:
      throw new Error(`not a write: ${e.method}`);
  }
}

async function runTransaction(ctx: InteractionContext, entries: Entry[], prefer: ReturnPreference): Promise<BundleEntryText[]> {
  return ctx.store.db.transaction(async (tx) => {
    const w = new Writer(ctx, tx);
    const ids = new Map<string, string>();
    const touched = new Map<string, number>();
    const claim = (e: Entry, key: string) => {
      const other = touched.get(key);
      if (other !== undefined) throw badRequest(`${where(e)} and Bundle.entry[${other}] both change ${key}`, [where(e)]);
      touched.set(key, e.index);
    };
    // 1. Identities: conditional creates/updates resolved under their locks, new ids assigned.
    for (const e of entries) {
      try {
        const type = e.target.resourceType!;
        if (e.method === 'POST') {
          if (e.ifNoneExist !== undefined) {
            // The condition's lock is held to the end of the transaction, so no one else can
            // create a match before this entry's resource is written below.
            const matches = await w.lockAndMatch(type, e.ifNoneExist, 'If-None-Exist');
            if (matches.length > 1) throw preconditionFailed(`If-None-Exist '${e.ifNoneExist}' matches ${matches.length} resources`);
            if (matches[0]) e.existing = { kind: 'existing', version: matches[0] };
          }
          e.id = e.existing?.version?.id ?? randomUUID();
        } else if (e.method === 'PUT' && !e.target.id) {
          const matches = await w.lockAndMatch(type, e.target.query!, 'conditional update');
          if (matches.length > 1) throw preconditionFailed(`The condition '${e.target.query}' matches ${matches.length} resources`);
          e.id = matches[0]?.id ?? e.resource?.id ?? randomUUID();
        } else if (e.method === 'PUT' || e.method === 'DELETE' || e.method === 'PATCH') {
          e.id = e.target.id;
        }
        if (e.id && e.method !== 'GET' && e.method !== 'HEAD') claim(e, `${type}/${e.id}`);
        if (e.fullUrl && e.id && (e.method === 'POST' || e.method === 'PUT')) ids.set(e.fullUrl, `${type}/${e.id}`);
      } catch (error) {
        throw error instanceof FhirError ? error.withContext(where(e), where(e)) : error;
      }
    }
    // 2. References to other entries and conditional references become Type/id.
    const resolved = new Map<string, string>();
    for (const e of entries) {
      if (!e.resource || e.existing) continue;
      try {
        await rewriteReferences(w, e.resource, ids, true, resolved);
      } catch (error) {
        throw error instanceof FhirError ? error.withContext(where(e), `${where(e)}.resource`) : error;
      }
    }
    // 3. Entries in the spec's order; plain creates are written together in one batched insert.
    const results = new Map<number, BundleEntryText>();
    const ordered = [...entries].sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index);
    const creates = ordered.filter((e) => e.method === 'POST' && !e.existing);
    const prepared = creates.map((e) => {
      try {
        return w.prepareCreate(w.check(e.resource, e.target.resourceType!), e.id);
      } catch (error) {
        throw error instanceof FhirError ? error.withContext(where(e), `${where(e)}.resource`) : error;
      }
    });
    for (const e of ordered) {
      try {
        if (e.method === 'POST' && !e.existing) {
          if (e === creates[0]) await w.insertPrepared(prepared);
          const v = prepared[creates.indexOf(e)]!;
          results.set(e.index, responseEntry(ctx, writeResult({ kind: 'created', version: v, resource: v.resource }), prefer));
        } else if (e.method === 'GET' || e.method === 'HEAD') {
          // A read changes nothing, so its failure (404, 410) is reported in its entry, as in a batch.
          results.set(e.index, await readEntry(w.ctx, e.target));
        } else {
          results.set(e.index, responseEntry(ctx, writeResult(await executeWrite(w, e)), prefer));
        }
      } catch (error) {
        throw error instanceof FhirError ? error.withContext(where(e), where(e)) : error;
      }
    }
    // One AuditEvent and one Provenance for the whole Bundle, committed with it (src/audit/).
    const existing = entries.flatMap((e) => (e.existing ? unwrittenEntities(e.existing) : []));
    await w.recordRequest([...existing, ...entries.filter((e) => e.method === 'GET' || e.method === 'HEAD').flatMap((e) => entryEntities(e.target))]);
    return entries.map((e) => results.get(e.index)!);
  });
}

async function readEntry(ctx: InteractionContext, target: EntryTarget): Promise<BundleEntryText> {
  try {
    return responseEntry(ctx, await executeRead(ctx, target), 'representation');
  } catch (error) {
    if (!(error instanceof FhirError)) throw error;
    return errorEntry(error);
  }
}

function errorEntry(fe: FhirError): BundleEntryText {
  return { response: { status: `${fe.status} ${STATUS_CODES[fe.status] ?? ''}`.trim(), outcome: fe.outcome } };
}

async function runBatchEntry(ctx: InteractionContext, raw: BundleEntry, index: number, prefer: ReturnPreference): Promise<BundleEntryText> {
  try {
    const e = parseEntry(raw, index, ctx.baseUrl);
    if (e.method === 'GET' || e.method === 'HEAD') {
      const read = await readEntry(ctx, e.target);
      await auditBatchRead(ctx, e.target, read);
      return read;
    }
    return await ctx.store.db.transaction(async (tx) => {
      const w = new Writer(ctx, tx);
      if (e.resource) await rewriteReferences(w, e.resource, new Map(), false);
      const outcome = await executeWrite(w, e);
      await w.recordRequest(unwrittenEntities(outcome, e.target));
      return responseEntry(ctx, writeResult(outcome), prefer);
    });
  } catch (error) {
    await auditBatchFailure(ctx, index, error);
    return errorEntry(error instanceof FhirError ? error : new FhirError(500, { severity: 'error', code: 'exception', diagnostics: 'Internal error processing this entry' }));
  }
}

export async function processBundle(ctx: InteractionContext, body: unknown, prefer: ReturnPreference = 'minimal'): Promise<InteractionResult> {
  const bundle = body as Bundle;
  if (bundle?.resourceType !== 'Bundle') throw badRequest('The body of a transaction or batch must be a Bundle');
  if (bundle.type !== 'transaction' && bundle.type !== 'batch') {
    throw badRequest(`Bundle.type must be 'transaction' or 'batch' (got '${bundle.type}')`, ['Bundle.type']);
  }
  // The route was matched before the body was read: the audit record says which it really is.
  if (ctx.audit) ctx.audit.interaction = bundle.type;
  const raw = bundle.entry ?? [];
  if (!Array.isArray(raw)) throw badRequest('Bundle.entry must be an array', ['Bundle.entry']);
  raw.forEach((e, i) => {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw badRequest('a Bundle entry must be an object', [`Bundle.entry[${i}]`]);
  });
  let entries: BundleEntryText[];
  if (bundle.type === 'transaction') {
    entries = await runTransaction(ctx, raw.map((e, i) => parseEntry(e, i, ctx.baseUrl)), prefer);
  } else {
    entries = [];
    for (let i = 0; i < raw.length; i++) entries.push(await runBatchEntry(ctx, raw[i]!, i, prefer));
  }
  return { status: 200, body: bundleText({ type: `${bundle.type}-response`, id: randomUUID(), entries }) };
}
