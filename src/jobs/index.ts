/** The job queue for this process: BullMQ when REDIS_URL is set, else the in-process fallback. */
import { BullMqJobQueue } from './bullmq-queue.js';
import { MemoryJobQueue } from './memory-queue.js';
import type { JobQueue } from './queue.js';

export type { Backoff, JobHandler, JobInfo, JobOptions, JobQueue } from './queue.js';
export { backoffDelay, DEFAULT_BACKOFF } from './queue.js';

export function createJobQueue(options: { redisUrl?: string; prefix?: string }): JobQueue {
  return options.redisUrl ? new BullMqJobQueue(options.redisUrl, options.prefix) : new MemoryJobQueue();
}
