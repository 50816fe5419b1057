/**
 * Subscriptions for one server process: the job queue (BullMQ with REDIS_URL, else in-process),
 * the outbox relay and the rest-hook workers. Every process runs all three; with Redis the
 * processes share the queues, and the relay's row lock lets one process relay a tenant at a time.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createJobQueue } from '../jobs/index.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Database } from '../store/db.js';
import type { Tenants } from '../store/tenants.js';
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
}): Promise<SubscriptionService> {
  const { db, tenants, config, logger } = options;
  const queue = createJobQueue({ redisUrl: config.redisUrl, prefix: config.redisPrefix });
  const notifier = new RestHookNotifier(tenants, queue, logger, config.baseUrl ? `${config.baseUrl}/fhir` : '');
  notifier.start({ changeConcurrency: 4, notifyConcurrency: 16 });
  const relay = new OutboxRelay(db, queue, logger);
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
