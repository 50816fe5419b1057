/**
 * Checks on Subscription writes (called by the Writer): only what this server can deliver is
 * accepted, so a subscription that can never notify fails at write time with 400, not later.
 */
import type { Resource, Subscription } from 'fhir/r4.js';
import { badRequest } from '../fhir/outcome.js';
import { queryPairs } from '../interactions/matching.js';
import { parseSearch } from '../search/query.js';
import type { SearchRegistry } from '../search/registry.js';

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
  if (channel?.type !== 'rest-hook') {
    throw badRequest(`Only rest-hook subscriptions are supported (channel.type '${channel?.type ?? ''}')`, ['Subscription.channel.type']);
  }
  let endpoint: URL | undefined;
  try {
    endpoint = channel.endpoint ? new URL(channel.endpoint) : undefined;
  } catch {
    endpoint = undefined;
  }
  if (!endpoint || (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:')) {
    throw badRequest(`channel.endpoint must be an absolute http(s) URL (got '${channel.endpoint ?? ''}')`, ['Subscription.channel.endpoint']);
  }
  if (channel.payload && !JSON_PAYLOADS.has(channel.payload)) {
    throw badRequest(`channel.payload must be empty or application/fhir+json (got '${channel.payload}')`, ['Subscription.channel.payload']);
  }
  for (const h of channel.header ?? []) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:/.test(h)) throw badRequest(`channel.header '${h}' is not 'Name: value'`, ['Subscription.channel.header']);
  }
  const { resourceType, query } = splitCriteria(sub.criteria ?? '');
  if (!/^[A-Z][A-Za-z]+$/.test(resourceType)) throw badRequest(`criteria must be [type]?[query] (got '${sub.criteria ?? ''}')`, ['Subscription.criteria']);
  try {
    // The same strict parse the matcher uses: an unknown parameter must not widen what matches.
    parseSearch(resourceType, queryPairs(query), { strict: true, registry });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw badRequest(`criteria '${sub.criteria}' is not a search this server can evaluate: ${detail}`, ['Subscription.criteria']);
  }
}

/** R4: the server moves a requested subscription to active when it accepts it (no handshake is sent). */
export function activateRequested<T extends Resource>(resource: T): T {
  const sub = resource as unknown as Subscription;
  if (sub.resourceType !== SUBSCRIPTION || sub.status !== 'requested') return resource;
  return { ...resource, status: 'active' };
}
