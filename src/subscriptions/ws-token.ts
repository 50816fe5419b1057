/**
 * Websocket binding tokens (backport IG $get-ws-binding-token): random, short-lived, bound to one
 * subscription, usable once. Stored as a sha-256 hash in the tenant's database, so any server
 * process can accept a token another one issued.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Parameters, Subscription } from 'fhir/r4.js';
import { badRequest, notFound } from '../fhir/outcome.js';
import { readClient, type InteractionContext, type InteractionResult } from '../interactions/context.js';
import type { ResourceStore } from '../store/resource-store.js';
import { quoteIdent } from '../store/schema.js';
import { SUBSCRIPTION } from './validate.js';

export const WS_TOKEN_TTL_SECONDS = 60;
const hash = (token: string) => createHash('sha256').update(token).digest('hex');

/** The websocket URL of a FHIR base (http → ws), where clients bind. */
export function websocketUrl(fhirBase: string): string {
  return `${fhirBase.replace(/^http/, 'ws')}/$websocket`;
}

/** $get-ws-binding-token for one websocket subscription: Parameters token, expiration, subscription, websocket-url. */
export async function getWsBindingToken(ctx: InteractionContext, id: string): Promise<InteractionResult> {
  const current = await ctx.store.current(readClient(ctx), SUBSCRIPTION, id);
  if (!current || current.deleted || !current.content) throw notFound(`Subscription/${id} is not known`);
  const sub = JSON.parse(current.content) as Subscription;
  if (sub.channel.type !== 'websocket') throw badRequest(`Subscription/${id} does not use the websocket channel (channel.type '${sub.channel.type}')`);
  const token = randomBytes(24).toString('base64url');
  const s = quoteIdent(ctx.store.schema);
  const r = await ctx.store.db.query<{ expires_at: string | Date }>(
    `INSERT INTO ${s}.subscription_ws_token (token_hash, subscription_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at`,
    [hash(token), id, WS_TOKEN_TTL_SECONDS],
  );
  // Expired tokens of any subscription go on the way (tokens are few and short-lived).
  await ctx.store.db.query(`DELETE FROM ${s}.subscription_ws_token WHERE expires_at < now() - interval '1 minute'`);
  const body: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'token', valueString: token },
      { name: 'expiration', valueDateTime: new Date(r.rows[0]!.expires_at).toISOString() },
      { name: 'subscription', valueString: id },
      { name: 'websocket-url', valueUrl: websocketUrl(ctx.baseUrl) },
    ],
  };
  return { status: 200, body };
}

/** Use a token: the subscription id it was issued for, or undefined (unknown, used or expired). */
export async function redeemWsToken(store: ResourceStore, token: string): Promise<string | undefined> {
  const r = await store.db.query<{ subscription_id: string }>(
    `DELETE FROM ${quoteIdent(store.schema)}.subscription_ws_token WHERE token_hash = $1 AND expires_at > now() RETURNING subscription_id`,
    [hash(token)],
  );
  return r.rows[0]?.subscription_id;
}
