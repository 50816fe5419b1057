/**
 * Handshake of topic-based rest-hook subscriptions (backport IG): a Subscription written with
 * status `requested` gets one `handshake` notification (a history Bundle whose SubscriptionStatus
 * has type handshake); a 2xx answer moves it to `active`, anything else to `error` with the reason.
 * Runs in the subscription change job (the Subscription's own change event), once per version.
 */
import type { Subscription } from 'fhir/r4.js';
import type { Logger } from 'pino';
import type { ResourceStore } from '../store/resource-store.js';
import type { ChangeJob } from './consumers.js';
import { readState } from './numbering.js';
import { channelHeaders, sendRequest } from './payload.js';
import { setSubscriptionStatus } from './status.js';
import { isTopicSubscription, topicNotification } from './topic-notification.js';

export function handshaker(fhirBase: (tenant: string) => string, logger: Logger) {
  return async (tenant: string, store: ResourceStore, sub: Subscription, job: ChangeJob): Promise<void> => {
    const baseUrl = fhirBase(tenant);
    if (sub.status !== 'requested' || !isTopicSubscription(sub) || sub.channel.type !== 'rest-hook' || !sub.channel.endpoint) return;
    // Only the current version: a later write (client or an earlier handshake) decides otherwise.
    const current = await store.current(store.db, 'Subscription', sub.id!);
    if (!current || current.versionId !== job.versionId) return;
    const state = await readState(store.db, store.schema, sub.id!);
    const bundle = await topicNotification(store, sub, baseUrl, { type: 'handshake', eventsSinceStart: state.eventsSinceStart, events: [] });
    try {
      await sendRequest({ method: 'POST', url: sub.channel.endpoint, headers: { ...channelHeaders(sub), 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) }, sub);
    } catch (error) {
      await setSubscriptionStatus(store, baseUrl, logger, job.versionId, sub, 'error', `Handshake failed: ${(error as Error).message}`);
      return;
    }
    await setSubscriptionStatus(store, baseUrl, logger, job.versionId, sub, 'active');
  };
}
