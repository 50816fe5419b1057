/**
 * Subscription operations of the Subscriptions R5 Backport IG, for every Subscription of this
 * server (topic-based and R4 criteria ones alike, both are numbered):
 * - Subscription/{id}/$status, Subscription/$status?id=…: Bundle (searchset) of SubscriptionStatus
 *   Parameters (type query-status), with events-since-subscription-start and the error if any.
 * - Subscription/{id}/$events?eventsSinceNumber&eventsUntilNumber&content: the stored events as a
 *   notification Bundle (history, type query-event). Events are kept for the subscription's life.
 */
import type { Bundle, Parameters, Subscription } from 'fhir/r4.js';
import { badRequest, notFound } from '../fhir/outcome.js';
import { readClient, type InteractionContext, type InteractionResult } from '../interactions/context.js';
import { quoteIdent } from '../store/schema.js';
import { eventsBetween, readState } from './numbering.js';
import { statusParameters, topicNotification, type PayloadContent } from './topic-notification.js';
import { SUBSCRIPTION } from './validate.js';

const BP_OPS = 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/';
export const STATUS_DEFINITION = `${BP_OPS}backport-subscription-status`;
export const EVENTS_DEFINITION = `${BP_OPS}backport-subscription-events`;
export const WS_TOKEN_DEFINITION = `${BP_OPS}backport-subscription-get-ws-binding-token`;
/** Most events one $events call returns. */
const MAX_EVENTS = 1000;

async function subscriptionOf(ctx: InteractionContext, id: string): Promise<Subscription> {
  const current = await ctx.store.current(readClient(ctx), SUBSCRIPTION, id);
  if (!current || current.deleted || !current.content) throw notFound(`Subscription/${id} is not known`);
  return JSON.parse(current.content) as Subscription;
}

async function statusOf(ctx: InteractionContext, sub: Subscription): Promise<Parameters> {
  const state = await readState(readClient(ctx), ctx.store.schema, sub.id!);
  return statusParameters(sub, ctx.baseUrl, 'query-status', state.eventsSinceStart, [], false, sub.error ?? state.lastError);
}

/** $status for the given ids (instance: one; type level: the `id` parameters, or every subscription). */
export async function statusOperation(ctx: InteractionContext, ids: string[] | undefined): Promise<InteractionResult> {
  let subs: Subscription[];
  if (ids && ids.length > 0) {
    subs = [];
    for (const id of ids) subs.push(await subscriptionOf(ctx, id));
  } else {
    const r = await readClient(ctx).query<{ content: string }>(
      `SELECT content FROM ${quoteIdent(ctx.store.schema)}.resource WHERE resource_type = 'Subscription' AND NOT deleted ORDER BY id`,
    );
    subs = r.rows.map((row) => JSON.parse(row.content) as Subscription);
  }
  const entry = [];
  for (const sub of subs) {
    const status = await statusOf(ctx, sub);
    entry.push({ fullUrl: `urn:uuid:${status.id}`, resource: status, search: { mode: 'match' as const } });
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: entry.length, entry };
  return { status: 200, body: bundle };
}

function numberParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw badRequest(`${name} must be a non-negative integer (got '${raw}')`);
  return Number(raw);
}

export async function eventsOperation(ctx: InteractionContext, id: string, query: URLSearchParams): Promise<InteractionResult> {
  const sub = await subscriptionOf(ctx, id);
  const since = numberParam(query, 'eventsSinceNumber');
  const until = numberParam(query, 'eventsUntilNumber');
  const content = query.get('content') ?? undefined;
  if (content !== undefined && !['empty', 'id-only', 'full-resource'].includes(content)) throw badRequest(`content must be empty, id-only or full-resource (got '${content}')`);
  const state = await readState(readClient(ctx), ctx.store.schema, id);
  const from = since ?? 1;
  const to = Math.min(until ?? state.eventsSinceStart, state.eventsSinceStart);
  if (from > to + 1 && until !== undefined) throw badRequest(`eventsSinceNumber (${from}) is after eventsUntilNumber (${until})`);
  const events = await eventsBetween(readClient(ctx), ctx.store.schema, id, from - 1, to, MAX_EVENTS);
  const bundle = await topicNotification(ctx.store, sub, ctx.baseUrl, { type: 'query-event', eventsSinceStart: state.eventsSinceStart, events, content: content as PayloadContent | undefined });
  return { status: 200, body: bundle };
}
