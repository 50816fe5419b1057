/**
 * Checks on Subscription writes (called by the Writer): only what this server can deliver is
 * accepted, so a subscription that can never notify fails at write time with 400, not later.
 */
import type { Basic, Resource, Subscription } from 'fhir/r4.js';
import { badRequest } from '../fhir/outcome.js';
import { queryPairs } from '../interactions/matching.js';
import { parseSearch } from '../search/query.js';
import type { SearchRegistry } from '../search/registry.js';
import { registerWriteRule } from '../interactions/write-rules.js';
import { hostAllowed } from './security.js';
import { quoteIdent } from '../store/schema.js';
import { filterCriteria, heartbeatPeriod, isTopicSubscription } from './topic-notification.js';
import { fhirPathError, loadTopics, parseTopic } from './topics.js';

export const SUBSCRIPTION = 'Subscription';

/** Payload MIME types we send (the resource as JSON); empty/absent → notification without a body. */
export const JSON_PAYLOADS = new Set(['application/fhir+json', 'application/json']);

/** The criteria split into the resource type and the search query string. */
export function splitCriteria(criteria: string): { resourceType: string; query: string } {
  const q = criteria.indexOf('?');
  return q < 0 ? { resourceType: criteria, query: '' } : { resourceType: criteria.slice(0, q), query: criteria.slice(q + 1) };
}

/** Throws 400 when the subscription cannot be served; statuses the client sets are kept except requested → active. */
export function checkSubscription(resource: Resource, registry: SearchRegistry): void {
  const sub = resource as Subscription;
  const channel = sub.channel;
  if (channel?.type !== 'rest-hook' && channel?.type !== 'websocket') {
    throw badRequest(`Only rest-hook and websocket subscriptions are supported (channel.type '${channel?.type ?? ''}')`, ['Subscription.channel.type']);
  }
  if (channel.type === 'websocket') return checkCriteria(sub, registry); // clients bind to /fhir/$websocket
  let endpoint: URL | undefined;
  try {
    endpoint = channel.endpoint ? new URL(channel.endpoint) : undefined;
  } catch {
    endpoint = undefined;
  }
  if (!endpoint || (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:')) {
    throw badRequest(`channel.endpoint must be an absolute http(s) URL (got '${channel.endpoint ?? ''}')`, ['Subscription.channel.endpoint']);
  }
  if (!hostAllowed(endpoint)) {
    throw badRequest(`channel.endpoint host '${endpoint.hostname}' is not in SUBSCRIPTION_ALLOWED_HOSTS`, ['Subscription.channel.endpoint']);
  }
  for (const h of channel.header ?? []) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:/.test(h)) throw badRequest(`channel.header '${h}' is not 'Name: value'`, ['Subscription.channel.header']);
  }
  checkCriteria(sub, registry);
}

function checkCriteria(sub: Subscription, registry: SearchRegistry): void {
  if (sub.channel.payload && !JSON_PAYLOADS.has(sub.channel.payload)) {
    throw badRequest(`channel.payload must be empty or application/fhir+json (got '${sub.channel.payload}')`, ['Subscription.channel.payload']);
  }
  if (isTopicSubscription(sub)) {
    // Topic-based: the topic must exist (checked by the write rule below, it needs the database);
    // each filter is a search on one type.
    for (const f of filterCriteria(sub)) checkSearch(f, registry, 'Subscription.criteria.extension');
    return;
  }
  checkSearch(sub.criteria ?? '', registry, 'Subscription.criteria');
}

/** `Type?query` that the search engine evaluates strictly (an unknown parameter must not widen what matches). */
function checkSearch(criteria: string, registry: SearchRegistry, path: string): void {
  const { resourceType, query } = splitCriteria(criteria);
  if (!/^[A-Z][A-Za-z]+$/.test(resourceType)) throw badRequest(`criteria must be [type]?[query] (got '${criteria}')`, [path]);
  try {
    parseSearch(resourceType, queryPairs(query), { strict: true, registry });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw badRequest(`criteria '${criteria}' is not a search this server can evaluate: ${detail}`, [path]);
  }
}

/** Topic-based subscriptions: the topic exists and each filter uses a parameter the topic allows for its type. */
registerWriteRule({
  name: 'subscription-topic',
  types: [SUBSCRIPTION],
  async apply(writer, change) {
    const sub = change.resource as Subscription | undefined;
    if (!sub) return;
    // Heartbeats (heartbeat.ts) of topic-based rest-hook subscriptions; none for the others.
    const heartbeat = isTopicSubscription(sub) && sub.channel.type === 'rest-hook' ? (heartbeatPeriod(sub) ?? null) : null;
    await writer.tx.query(
      `INSERT INTO ${quoteIdent(writer.ctx.store.schema)}.subscription_state (subscription_id, heartbeat_seconds) VALUES ($1, $2)
       ON CONFLICT (subscription_id) DO UPDATE SET heartbeat_seconds = EXCLUDED.heartbeat_seconds`,
      [change.id, heartbeat],
    );
    if (!isTopicSubscription(sub)) return;
    const topic = (await loadTopics(writer.tx, writer.ctx.store.schema)).get(sub.criteria!);
    if (!topic) throw badRequest(`criteria '${sub.criteria}' is not the URL of a SubscriptionTopic on this server`, ['Subscription.criteria']);
    for (const f of filterCriteria(sub)) {
      const { resourceType, query } = splitCriteria(f);
      if (!topic.triggers.some((t) => t.resourceType === resourceType)) {
        throw badRequest(`filter '${f}': topic ${topic.url} has no trigger for ${resourceType}`, ['Subscription.criteria.extension']);
      }
      const allowed = topic.canFilterBy.get(resourceType);
      for (const [name] of queryPairs(query)) {
        const base = name.replace(/:.*$/, '');
        if (allowed && !allowed.has(base)) throw badRequest(`filter '${f}': topic ${topic.url} cannot filter ${resourceType} by '${base}'`, ['Subscription.criteria.extension']);
      }
    }
  },
});

/** Topics (Basic): fhirPathCriteria must compile, or the topic could never fire. */
registerWriteRule({
  name: 'subscription-topic-definition',
  types: ['Basic'],
  async apply(_writer, change) {
    const topic = change.resource ? parseTopic(change.resource as Basic) : undefined;
    for (const t of topic?.triggers ?? []) {
      const error = t.fhirPath ? fhirPathError(t.fhirPath) : undefined;
      if (error) throw badRequest(`fhirPathCriteria '${t.fhirPath}' does not compile: ${error}`, ['Basic.extension']);
    }
  },
});

/** R4: the server moves a requested subscription to active when it accepts it (no handshake is sent). */
export function activateRequested<T extends Resource>(resource: T): T {
  const sub = resource as unknown as Subscription;
  if (sub.resourceType !== SUBSCRIPTION || sub.status !== 'requested') return resource;
  // Topic-based (backport) rest-hook subscriptions stay requested until their handshake succeeds.
  if (isTopicSubscription(sub) && sub.channel?.type === 'rest-hook') return resource;
  return { ...resource, status: 'active' };
}
