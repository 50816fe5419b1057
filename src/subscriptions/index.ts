/**
 * Change events for one server process: the job queue (BullMQ with REDIS_URL, else in-process),
 * the outbox relay, and the workers of every change consumer (rest-hook subscriptions built in,
 * others such as HL7 v2 outbound passed by the server). Every process runs all of them; with
 * Redis the processes share the queues, and the relay's row lock lets one process relay a tenant
 * at a time.
 */
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createJobQueue } from '../jobs/index.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Database } from '../store/db.js';
import { DEFAULT_TENANT, type Tenants } from '../store/tenants.js';
import type { ChangeConsumer } from './consumers.js';
import { OutboxRelay } from './relay.js';
import { Delivery } from './delivery.js';
import { handshaker } from './handshake.js';
import { Heartbeats } from './heartbeat.js';
import { SubscriptionMatcher } from './rest-hook.js';
import { setAllowedHosts } from './security.js';
import { attachWebSocket } from './websocket.js';
import { WsHub } from './ws-hub.js';

/** How often the matcher looks for events no change job came for. */
const CATCH_UP_MS = 5_000;

export interface SubscriptionService {
  queue: JobQueue;
  relay: OutboxRelay;
  /** Serve the websocket channel on the HTTP server (/fhir/$websocket); closed with the service. */
  attachWebSocket(server: Server): void;
  /** Close every websocket (before the HTTP server drains: upgraded sockets would hold it open). */
  closeWebSocket(): void;
  close(): Promise<void>;
}

export async function startSubscriptions(options: {
  db: Database;
  tenants: Tenants;
  config: Pick<Config, 'redisUrl' | 'redisPrefix' | 'baseUrl' | 'subscriptionAllowedHosts'> & Partial<Pick<Config, 'subscriptionEventRetention'>>;
  logger: Logger;
  /** More consumers of change events, built on the shared queue. */
  consumers?: (queue: JobQueue) => ChangeConsumer[];
}): Promise<SubscriptionService> {
  const { db, tenants, config, logger } = options;
  const queue = createJobQueue({ redisUrl: config.redisUrl, prefix: config.redisPrefix });
  setAllowedHosts(config.subscriptionAllowedHosts);
  // Where each tenant's FHIR API is (/fhir, /t/<tenant>/fhir); without BASE_URL notifications use relative references.
  const fhirBase = (tenant: string) => (!config.baseUrl ? '' : tenant === DEFAULT_TENANT ? `${config.baseUrl}/fhir` : `${config.baseUrl}/t/${tenant}/fhir`);
  const hub = new WsHub(logger, config.redisUrl, config.redisPrefix);
  const delivery = new Delivery(tenants, queue, logger, fhirBase, hub, config.subscriptionEventRetention);
  delivery.start(16);
  const heartbeats = new Heartbeats(tenants, queue, logger, fhirBase);
  heartbeats.start();
  const matcher = new SubscriptionMatcher(tenants, delivery, logger, handshaker(fhirBase, logger));
  const consumers = [matcher.changeConsumer(), ...(options.consumers?.(queue) ?? [])];
  // Events whose change job was lost (in-process queue across a restart) are matched anyway.
  let catchUpTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  const catchUp = () => {
    catchUpTimer = setTimeout(() => {
      void matcher
        .catchUp()
        .catch((error) => logger.warn({ err: error }, 'subscription matcher catch-up failed'))
        .finally(() => !stopped && catchUp());
    }, CATCH_UP_MS);
  };
  catchUp();
  for (const c of consumers) queue.process(c.queue, c.handle, { concurrency: c.concurrency ?? 4 });
  const relay = new OutboxRelay(db, queue, consumers, logger);
  try {
    await relay.start();
  } catch (error) {
    stopped = true;
    clearTimeout(catchUpTimer);
    delivery.close();
    heartbeats.close();
    await hub.close();
    await queue.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  let websocket: { close(): void } | undefined;
  return {
    queue,
    relay,
    attachWebSocket(server) {
      websocket = attachWebSocket(server, { tenants, hub, logger, fhirBase });
    },
    closeWebSocket() {
      websocket?.close();
      websocket = undefined;
    },
    close() {
      // The relay first (it enqueues), then the workers (they finish their current job).
      websocket?.close();
      stopped = true;
      clearTimeout(catchUpTimer);
      closing ??= relay.close().finally(async () => {
        delivery.close();
        heartbeats.close();
        await hub.close();
        await queue.close();
      });
      return closing;
    },
  };
}
