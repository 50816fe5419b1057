/**
 * Topic-based Subscriptions (Subscriptions R5 Backport IG, R4 profiles): reading the backport
 * extensions of a Subscription, and building notification Bundles: type history, first entry the
 * R4 SubscriptionStatus (Parameters, profile backport-subscription-status-r4), then per event the
 * focus resource as the payload content asks (empty: none; id-only: fullUrl and request only;
 * full-resource: the version of the event).
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Parameters, ParametersParameter, Resource, Subscription } from 'fhir/r4.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { NumberedEvent } from './numbering.js';

const BP = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
export const FILTER_CRITERIA = `${BP}backport-filter-criteria`;
export const PAYLOAD_CONTENT = `${BP}backport-payload-content`;
export const HEARTBEAT_PERIOD = `${BP}backport-heartbeat-period`;
export const TIMEOUT = `${BP}backport-timeout`;
export const MAX_COUNT = `${BP}backport-max-count`;
export const STATUS_PROFILE = `${BP}backport-subscription-status-r4`;
export const NOTIFICATION_PROFILE = `${BP}backport-subscription-notification-r4`;

export type PayloadContent = 'empty' | 'id-only' | 'full-resource';
export type NotificationType = 'handshake' | 'heartbeat' | 'event-notification' | 'query-status' | 'query-event';

/** An absolute URL when the server knows its base (BASE_URL), else a relative reference. */
const ref = (baseUrl: string, path: string) => (baseUrl ? `${baseUrl}/${path}` : path);

/** A topic-based subscription names its topic by canonical URL in criteria (R4 criteria are Type?query). */
export function isTopicSubscription(sub: Subscription): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(sub.criteria ?? '');
}

export function filterCriteria(sub: Subscription): string[] {
  return (sub._criteria?.extension ?? []).filter((e) => e.url === FILTER_CRITERIA).map((e) => e.valueString ?? '');
}

export function payloadContent(sub: Subscription): PayloadContent {
  const code = (sub.channel._payload?.extension ?? []).find((e) => e.url === PAYLOAD_CONTENT)?.valueCode;
  return code === 'empty' || code === 'full-resource' ? code : code === 'id-only' ? 'id-only' : sub.channel.payload ? 'id-only' : 'empty';
}

function channelNumber(sub: Subscription, url: string): number | undefined {
  const e = (sub.channel.extension ?? []).find((x) => x.url === url);
  const v = e?.valueUnsignedInt ?? e?.valuePositiveInt ?? e?.valueInteger;
  return typeof v === 'number' ? v : undefined;
}

export const heartbeatPeriod = (sub: Subscription) => channelNumber(sub, HEARTBEAT_PERIOD);
export const timeoutSeconds = (sub: Subscription) => channelNumber(sub, TIMEOUT);
export const maxCount = (sub: Subscription) => channelNumber(sub, MAX_COUNT);

/** The SubscriptionStatus Parameters for a subscription. */
export function statusParameters(sub: Subscription, baseUrl: string, type: NotificationType, eventsSinceStart: number, events: NumberedEvent[], withFocus: boolean, error?: string): Parameters {
  const parameter: ParametersParameter[] = [
    { name: 'subscription', valueReference: { reference: ref(baseUrl, `Subscription/${sub.id}`) } },
    { name: 'topic', valueCanonical: sub.criteria },
    { name: 'status', valueCode: sub.status },
    { name: 'type', valueCode: type },
    { name: 'events-since-subscription-start', valueString: String(eventsSinceStart) },
  ];
  for (const e of events) {
    const part: ParametersParameter[] = [
      { name: 'event-number', valueString: String(e.eventNumber) },
      { name: 'timestamp', valueInstant: e.createdAt },
    ];
    if (withFocus) part.push({ name: 'focus', valueReference: { reference: ref(baseUrl, `${e.resourceType}/${e.id}`) } });
    parameter.push({ name: 'notification-event', part });
  }
  if (error) parameter.push({ name: 'error', valueCodeableConcept: { text: error } });
  return { resourceType: 'Parameters', id: randomUUID(), meta: { profile: [STATUS_PROFILE] }, parameter };
}

/** A notification Bundle (history) for the events; `empty` content carries the status only. */
export async function topicNotification(
  store: ResourceStore,
  sub: Subscription,
  baseUrl: string,
  n: { type: NotificationType; eventsSinceStart: number; events: NumberedEvent[]; error?: string; content?: PayloadContent },
): Promise<Bundle> {
  const content = n.content ?? payloadContent(sub);
  const status = statusParameters(sub, baseUrl, n.type, n.eventsSinceStart, n.events, content !== 'empty', n.error);
  const entry: BundleEntry[] = [
    {
      fullUrl: `urn:uuid:${status.id}`,
      resource: status,
      request: { method: 'GET', url: ref(baseUrl, `Subscription/${sub.id}/$status`) },
      response: { status: '200' },
    },
  ];
  if (content !== 'empty') {
    for (const e of n.events) {
      const fullUrl = ref(baseUrl, `${e.resourceType}/${e.id}`);
      const request = { method: (e.action === 'create' ? 'POST' : e.action === 'update' ? 'PUT' : 'DELETE') as 'POST', url: e.action === 'create' ? e.resourceType : `${e.resourceType}/${e.id}` };
      const response = { status: e.action === 'create' ? '201' : e.action === 'delete' ? '204' : '200' };
      let resource: Resource | undefined;
      if (content === 'full-resource' && e.action !== 'delete') {
        const version = await store.version(store.db, e.resourceType, e.id, e.versionId);
        resource = version?.content ? (JSON.parse(version.content) as Resource) : undefined;
      }
      entry.push({ fullUrl, ...(resource ? { resource } : {}), request, response });
    }
  }
  return { resourceType: 'Bundle', id: randomUUID(), meta: { profile: [NOTIFICATION_PROFILE] }, type: 'history', timestamp: new Date().toISOString(), entry };
}
