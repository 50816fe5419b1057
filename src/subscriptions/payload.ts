/**
 * What one rest-hook notification looks like on the wire.
 *
 * R4 criteria subscriptions (hl7.org/fhir/R4/subscription.html#2.46.7.1): without a payload, an
 * empty POST to channel.endpoint; with application/fhir+json, the resource version as an update
 * (PUT) to [endpoint]/[type]/[id]. The event number travels in the X-CareBridge-Event-Number
 * header (a receiver that sees a number twice has a duplicate, at-least-once delivery).
 *
 * Topic-based subscriptions (backport IG) get a history Bundle (topic-notification.ts).
 */
import type { Subscription } from 'fhir/r4.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { NumberedEvent } from './numbering.js';
import { hostAllowed } from './security.js';
import { isTopicSubscription, topicNotification } from './topic-notification.js';
import { JSON_PAYLOADS } from './validate.js';

export interface OutgoingRequest {
  method: 'POST' | 'PUT';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export const EVENT_NUMBER_HEADER = 'x-carebridge-event-number';

/** channel.header entries ('Name: value') as headers. */
export function channelHeaders(sub: Subscription): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of sub.channel.header ?? []) {
    const colon = h.indexOf(':');
    if (colon > 0) headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }
  return headers;
}

/** The request for one event; undefined when there is nothing to send (the version was expunged). */
export async function notificationRequest(store: ResourceStore, sub: Subscription, event: NumberedEvent, eventsSinceStart: number, baseUrl: string): Promise<OutgoingRequest | undefined> {
  const headers: Record<string, string> = {
    ...channelHeaders(sub),
    'x-carebridge-subscription': event.subscriptionId,
    'x-carebridge-event': `${tenantOf(store)}.${event.changeSeq}`,
    [EVENT_NUMBER_HEADER]: String(event.eventNumber),
  };
  const endpoint = sub.channel.endpoint!;
  if (isTopicSubscription(sub)) {
    const bundle = await topicNotification(store, sub, baseUrl, { type: 'event-notification', eventsSinceStart, events: [event] });
    return { method: 'POST', url: endpoint, headers: { ...headers, 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) };
  }
  if (sub.channel.payload && JSON_PAYLOADS.has(sub.channel.payload)) {
    const version = await store.version(store.db, event.resourceType, event.id, event.versionId);
    if (!version?.content) return undefined;
    return {
      method: 'PUT',
      url: `${endpoint.replace(/\/+$/, '')}/${event.resourceType}/${encodeURIComponent(event.id)}`,
      headers: { ...headers, 'content-type': 'application/fhir+json' },
      body: version.content,
    };
  }
  return { method: 'POST', url: endpoint, headers };
}

function tenantOf(store: ResourceStore): string {
  return store.schema.replace(/^tenant_/, '');
}

const REQUEST_TIMEOUT_MS = 10_000;

export class DeliveryError extends Error {}

/** Send a notification; throws DeliveryError with the reason unless the endpoint answers 2xx. */
export async function sendRequest(request: OutgoingRequest, sub: Subscription): Promise<void> {
  const url = new URL(request.url);
  if (!hostAllowed(url)) throw new DeliveryError(`endpoint host '${url.hostname}' is not in SUBSCRIPTION_ALLOWED_HOSTS`);
  try {
    // Never follow redirects: a 3xx is a failure (the endpoint is what the subscriber registered).
    const res = await fetch(url, { method: request.method, headers: request.headers, body: request.body, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new DeliveryError(`HTTP ${res.status} from ${sub.channel.endpoint}`);
  } catch (error) {
    if (error instanceof DeliveryError) throw error;
    throw new DeliveryError(error instanceof Error ? `${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ''}` : String(error));
  }
}
