/**
 * Shareable links to a printed prescription: POST MedicationRequest/[id]/$pdf-link answers
 * `[origin]/share/[token]`, which serves the PDF without a FHIR login until it expires or is
 * revoked (POST MedicationRequest/[id]/$pdf-link-revoke, one link with `token`, else all links of
 * the request).
 *
 * A token is `base64url(payload).base64url(HMAC-SHA256(payload))`, the payload naming the link id,
 * the Binary and the expiry (seconds), so a forged or altered token is refused without a database
 * read. Every link is also a row of share_link (the revocation list: revoked_at), checked on each
 * use. Answers: unknown, forged or malformed token 404; expired or revoked 410 (OperationOutcome).
 * The key is SHARE_LINK_SECRET when set (all processes must share it), else 32 random bytes made
 * once per tenant and stored in workflow_secret. Links of other tenants than the default one are
 * /share/[tenant]/[token] (pdf-share-router.ts).
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Binary, Parameters } from 'fhir/r4.js';
import { FhirError, gone, notFound } from '../fhir/outcome.js';
import type { InteractionContext, InteractionResult } from '../interactions/context.js';
import { findMatches } from '../interactions/matching.js';
import { Writer } from '../interactions/writer.js';
import type { SqlClient } from '../store/db.js';
import type { ResourceStore } from '../store/resource-store.js';
import { quoteIdent } from '../store/schema.js';
import { businessRule, loadForUpdate, OperationParams, type OperationInput } from './medication-params.js';
import { storePrescriptionPdf } from './pdf-prescription.js';

export const DEFAULT_LINK_SECONDS = 24 * 3600;
export const MAX_LINK_SECONDS = 30 * 24 * 3600;
const SECRET_NAME = 'share-link-hmac';

interface LinkPayload {
  /** Link id (share_link.token_id). */
  l: string;
  /** Binary id. */
  b: string;
  /** Expiry, epoch seconds. */
  e: number;
}

const secrets = new Map<string, Buffer>();
let configuredKey: string | undefined;

/** SHARE_LINK_SECRET, set at server start (the FHIR routes see only an InteractionContext). */
export function configureShareLinks(secret: string | undefined): void {
  configuredKey = secret;
}

/** The HMAC key: configured, else the tenant's stored one (made on first use). */
async function secretOf(store: ResourceStore, configured: string | undefined = configuredKey): Promise<Buffer> {
  if (configured) return Buffer.from(configured, 'utf8');
  const cached = secrets.get(store.schema);
  if (cached) return cached;
  const table = `${quoteIdent(store.schema)}.workflow_secret`;
  await store.db.query(`INSERT INTO ${table} (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [SECRET_NAME, randomBytes(32).toString('base64')]);
  const r = await store.db.query<{ value: string }>(`SELECT value FROM ${table} WHERE name = $1`, [SECRET_NAME]);
  const key = Buffer.from(r.rows[0]!.value, 'base64');
  secrets.set(store.schema, key);
  return key;
}

const sign = (key: Buffer, payload: string) => createHmac('sha256', key).update(payload).digest('base64url');

export function makeToken(key: Buffer, payload: LinkPayload): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${sign(key, body)}`;
}

/** The payload of a well-signed token; 404 for anything else. */
export function readToken(key: Buffer, token: string): LinkPayload {
  const [body, mac, extra] = token.split('.');
  const unknown = () => notFound('This link is not valid');
  if (!body || !mac || extra !== undefined) throw unknown();
  const expected = Buffer.from(sign(key, body));
  const given = Buffer.from(mac);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw unknown();
  try {
    const p = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as LinkPayload;
    if (typeof p.l !== 'string' || typeof p.b !== 'string' || typeof p.e !== 'number') throw new Error('shape');
    return p;
  } catch {
    throw unknown();
  }
}

/** [origin]/share/[token] for the default tenant (FHIR base [origin]/fhir), [origin]/share/[tenant]/[token] for others ([origin]/t/[tenant]/fhir). */
function shareUrl(baseUrl: string, token: string): string {
  const tenant = /^(.*)\/t\/([^/]+)\/fhir$/.exec(baseUrl);
  return tenant ? `${tenant[1]}/share/${tenant[2]}/${token}` : `${baseUrl.replace(/\/fhir$/, '')}/share/${token}`;
}

/** The newest stored PDF of a request (its DocumentReference's Binary), if any. */
async function latestPdf(w: Writer, requestRef: string): Promise<string | undefined> {
  const docs = await findMatches(w.tx, w.ctx.store.schema, 'DocumentReference', `related=${encodeURIComponent(requestRef)}&_sort=-_lastUpdated`, 1, w.registry);
  const url = docs[0] ? (JSON.parse(docs[0].content!) as { content?: Array<{ attachment?: { url?: string } }> }).content?.[0]?.attachment?.url : undefined;
  return url?.startsWith('Binary/') ? url.slice('Binary/'.length) : undefined;
}

export async function createPdfLink(ctx: InteractionContext, id: string, input: OperationInput, configuredSecret?: string): Promise<InteractionResult> {
  const seconds = new OperationParams(input).positiveInteger('expires-in', MAX_LINK_SECONDS) ?? DEFAULT_LINK_SECONDS;
  const key = await secretOf(ctx.store, configuredSecret);
  const requestRef = `MedicationRequest/${id}`;
  const { token, expires, binaryId } = await ctx.store.db.transaction(async (tx) => {
    const w = new Writer(ctx, tx);
    await loadForUpdate(w, requestRef);
    // The newest printed PDF of the request; printed now if there is none yet.
    const binary = (await latestPdf(w, requestRef)) ?? (await storePrescriptionPdf(w, id)).binaryId;
    const exp = Math.floor(Date.now() / 1000) + seconds;
    const linkId = randomUUID();
    await tx.query(`INSERT INTO ${quoteIdent(ctx.store.schema)}.share_link (token_id, focus, binary_id, expires_at) VALUES ($1, $2, $3, to_timestamp($4))`, [linkId, requestRef, binary, exp]);
    return { token: makeToken(key, { l: linkId, b: binary, e: exp }), expires: new Date(exp * 1000).toISOString(), binaryId: binary };
  });
  const out: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'url', valueUri: shareUrl(ctx.baseUrl, token) },
      { name: 'expires', valueInstant: expires },
      { name: 'binary', valueReference: { reference: `Binary/${binaryId}` } },
    ],
  };
  return { status: 200, body: out };
}

export async function revokePdfLinks(ctx: InteractionContext, id: string, input: OperationInput, configuredSecret?: string): Promise<InteractionResult> {
  const token = new OperationParams(input).string('token');
  const requestRef = `MedicationRequest/${id}`;
  const table = `${quoteIdent(ctx.store.schema)}.share_link`;
  const revoked = await ctx.store.db.transaction(async (tx: SqlClient) => {
    await loadForUpdate(new Writer(ctx, tx), requestRef);
    if (token === undefined) {
      return (await tx.query(`UPDATE ${table} SET revoked_at = now() WHERE focus = $1 AND revoked_at IS NULL`, [requestRef])).rowCount ?? 0;
    }
    let link: LinkPayload;
    try {
      link = readToken(await secretOf(ctx.store, configuredSecret), token.replace(/^.*\//, ''));
    } catch {
      throw new FhirError(400, { severity: 'error', code: 'invalid', diagnostics: "Parameter 'token' is not a link of this server", expression: ['token'] });
    }
    const r = await tx.query(`UPDATE ${table} SET revoked_at = coalesce(revoked_at, now()) WHERE token_id = $1 AND focus = $2`, [link.l, requestRef]);
    if (!r.rowCount) throw businessRule(`The link is not one of ${requestRef}`, ['token']);
    return r.rowCount;
  });
  return { status: 200, body: { resourceType: 'Parameters', parameter: [{ name: 'revoked', valueInteger: revoked }] } as Parameters };
}

/** The PDF behind a share token (GET /share/[token]). */
export async function openShareLink(store: ResourceStore, token: string, configuredSecret?: string): Promise<{ contentType: string; data: Buffer }> {
  const link = readToken(await secretOf(store, configuredSecret), token);
  if (link.e * 1000 <= Date.now()) throw gone('This link has expired');
  const row = await store.db.query<{ revoked: boolean }>(`SELECT revoked_at IS NOT NULL AS revoked FROM ${quoteIdent(store.schema)}.share_link WHERE token_id = $1`, [link.l]);
  if (!row.rows[0]) throw notFound('This link is not valid');
  if (row.rows[0].revoked) throw gone('This link has been revoked');
  const binary = await store.current(store.db, 'Binary', link.b);
  if (!binary || binary.deleted || !binary.content) throw gone('The shared document has been deleted');
  const b = JSON.parse(binary.content) as Binary;
  return { contentType: b.contentType, data: Buffer.from(b.data ?? '', 'base64') };
}
