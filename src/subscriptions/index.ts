/**
 * Change events for one server process: the job queue (BullMQ with REDIS_URL, else in-process),
 * the outbox relay, and the workers of every change consumer (rest-hook subscriptions built in,
 * others such as HL7 v2 outbound passed by the server). Every process runs all of them; with
 * Redis the processes share the queues, and the relay's row lock lets one process relay a tenant
 * at a time.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createJobQueue } from '../jobs/index.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Database } from '../store/db.js';
import type { Tenants } from '../store/tenants.js';
import type { ChangeConsumer } from './consumers.js';
import { OutboxRelay } from './relay.js';
import { RestHookNotifier } from './rest-hook.js';

export interface SubscriptionService {
  queue: JobQueue;
  relay: OutboxRelay;
  close(): Promise<void>;
}

export async function startSubscriptions(options: {
  db: Database;
  tenants: Tenants;
  config: Pick<Config, 'redisUrl' | 'redisPrefix' | 'baseUrl'>;
  logger: Logger;
  /** More consumers of change events, built on the shared queue. */
  consumers?: (queue: JobQueue) => ChangeConsumer[];
}): Promise<SubscriptionService> {
  const { db, tenants, config, logger } = options;
  const queue = createJobQueue({ redisUrl: config.redisUrl, prefix: config.redisPrefix });
  const notifier = new RestHookNotifier(tenants, queue, logger, config.baseUrl ? `${config.baseUrl}/fhir` : '');
  notifier.start({ notifyConcurrency: 16 });
  const consumers = [notifier.changeConsumer(), ...(options.consumers?.(queue) ?? [])];
  for (const c of consumers) queue.process(c.queue, c.handle, { concurrency: c.concurrency ?? 4 });
  const relay = new OutboxRelay(db, queue, consumers, logger);
  try {
    await relay.start();
  } catch (error) {
    await queue.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    queue,
    relay,
    close() {
      // The relay first (it enqueues), then the workers (they finish their current job).
      closing ??= relay.close().finally(() => queue.close());
      return closing;
    },
  };
}
