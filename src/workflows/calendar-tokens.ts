/**
 * Revocable secret URLs for iCal feeds. A token is 32 random bytes (base64url) shown once; only
 * its SHA-256 is stored, as the identifier of a Basic resource (code calendar-token, subject the
 * Practitioner or Patient), so a database dump does not open anyone's calendar. Revoking deletes
 * the subject's Basic tokens: their URLs answer 404 from then on.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Basic, Parameters, Reference } from 'fhir/r4.js';
import { badRequest, notFound } from '../fhir/outcome.js';
import type { InteractionContext, InteractionResult } from '../interactions/context.js';
import { readClient } from '../interactions/context.js';
import { findMatches } from '../interactions/matching.js';
import { Writer } from '../interactions/writer.js';
import { searchRegistryOf } from '../search/tenant-params.js';
import { DEFAULT_TENANT } from '../store/tenants.js';

export const TOKEN_HASH_SYSTEM = 'urn:carebridge:calendar-token:sha256';
const CODE_SYSTEM = 'urn:carebridge:workflow';
const CODE = 'calendar-token';
export const FEED_TYPES: ReadonlySet<string> = new Set(['Practitioner', 'Patient']);

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * The public feed URL of a token, on the FHIR endpoint's origin: /calendar/[token].ics for the
 * default tenant, /calendar/[tenant]/[token].ics for the others.
 */
function feedUrl(ctx: InteractionContext, token: string): string {
  const origin = ctx.baseUrl.replace(/\/(?:t\/[^/]+\/)?fhir$/, '');
  const tenant = ctx.store.schema.replace(/^tenant_/, '');
  return `${origin}/calendar/${tenant === DEFAULT_TENANT ? '' : `${tenant}/`}${token}.ics`;
}

export async function createCalendarToken(ctx: InteractionContext, type: string, id: string): Promise<InteractionResult> {
  if (!FEED_TYPES.has(type)) throw badRequest(`$calendar-token is defined for Practitioner and Patient, not ${type}`);
  const token = randomBytes(32).toString('base64url');
  await ctx.store.db.transaction(async (tx) => {
    const writer = new Writer(ctx, tx);
    const subject = await ctx.store.current(tx, type, id);
    if (!subject || subject.deleted) throw notFound(`${type}/${id} is not known`);
    const basic: Basic = {
      resourceType: 'Basic',
      identifier: [{ system: TOKEN_HASH_SYSTEM, value: hashToken(token) }],
      code: { coding: [{ system: CODE_SYSTEM, code: CODE }] },
      subject: { reference: `${type}/${id}` },
      created: writer.now.slice(0, 10),
    };
    await writer.create(basic);
  });
  const out: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'url', valueUri: feedUrl(ctx, token) },
      { name: 'token', valueString: token },
    ],
  };
  return { status: 200, body: out };
}

export async function revokeCalendarTokens(ctx: InteractionContext, type: string, id: string): Promise<InteractionResult> {
  if (!FEED_TYPES.has(type)) throw badRequest(`$calendar-token is defined for Practitioner and Patient, not ${type}`);
  await ctx.store.db.transaction(async (tx) => {
    const writer = new Writer(ctx, tx);
    const tokens = await findMatches(tx, ctx.store.schema, 'Basic', `subject=${type}/${id}&code=${CODE_SYSTEM}|${CODE}`, 10_000, writer.registry);
    for (const t of tokens) await writer.delete('Basic', t.id);
  });
  return { status: 204 };
}

/** The Practitioner or Patient a token opens the calendar of; undefined if unknown or revoked. */
export async function tokenSubject(ctx: InteractionContext, token: string): Promise<Reference | undefined> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
  const [match] = await findMatches(readClient(ctx), ctx.store.schema, 'Basic', `identifier=${TOKEN_HASH_SYSTEM}|${hashToken(token)}`, 1, searchRegistryOf(ctx.store));
  const basic = match?.content ? (JSON.parse(match.content) as Basic) : undefined;
  const ref = basic?.subject?.reference;
  return ref && FEED_TYPES.has(ref.split('/')[0]!) ? { reference: ref } : undefined;
}
