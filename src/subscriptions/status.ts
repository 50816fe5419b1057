/** Subscription status changes made by the server (error, active, handshake outcome). */
import type { Resource, Subscription } from 'fhir/r4.js';
import type { Logger } from 'pino';
import { FhirError } from '../fhir/outcome.js';
import { Writer } from '../interactions/writer.js';
import type { ResourceStore } from '../store/resource-store.js';

/** An ordinary write (new Subscription version, If-Match): a concurrent change by a client wins (412 ignored). */
export async function setSubscriptionStatus(
  store: ResourceStore,
  baseUrl: string,
  logger: Logger,
  versionId: number,
  sub: Subscription,
  status: 'active' | 'error',
  error?: string,
): Promise<void> {
  const next: Subscription = { ...sub, status };
  if (error) next.error = error;
  else delete next.error;
  try {
    await store.db.transaction((tx) => new Writer({ store, baseUrl }, tx).update(next as Resource, sub.id!, { ifMatch: versionId }));
    logger.info({ subscription: sub.id, status, error }, 'subscription status changed');
  } catch (e) {
    if (!(e instanceof FhirError && e.status === 412)) logger.warn({ err: e, subscription: sub.id }, 'subscription status update failed');
  }
}
