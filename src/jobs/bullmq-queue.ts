/**
 * The job queue on Redis through BullMQ (REDIS_URL set): durable and shared by every process.
 * Backoff is our own capped exponential strategy; "unlimited" attempts is a very large count.
 * Completed jobs are kept a day so that a re-added job id (at-least-once producers) is ignored.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { backoffDelay, DEFAULT_BACKOFF, UNLIMITED_ATTEMPTS, type JobHandler, type JobInfo, type JobOptions, type JobQueue } from './queue.js';

const BACKOFF_TYPE = 'capped-exponential';
const KEEP_COMPLETED = { age: 24 * 3600, count: 100_000 };

export class BullMqJobQueue implements JobQueue {
  readonly kind = 'bullmq' as const;
  private readonly connection: Redis;
  private readonly queues = new Map<string, Queue>();
  private readonly workers: Worker[] = [];

  /** prefix: the Redis key prefix of every queue (tests use one per run). */
  constructor(
    redisUrl: string,
    private readonly prefix = 'carebridge',
  ) {
    this.connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    this.connection.on('error', () => undefined); // ioredis reconnects; BullMQ surfaces failures per call
  }

  async add<T>(name: string, data: T, opts: JobOptions = {}): Promise<void> {
    await this.queue(name).add(name, data, toBullOptions(opts));
  }

  async addBulk<T>(name: string, jobs: Array<{ data: T; opts?: JobOptions }>): Promise<void> {
    if (jobs.length === 0) return;
    await this.queue(name).addBulk(jobs.map((j) => ({ name, data: j.data, opts: toBullOptions(j.opts ?? {}) })));
  }

  process<T>(name: string, handler: JobHandler<T>, options: { concurrency: number }): void {
    const worker = new Worker(
      name,
      async (job: Job) => handler(toInfo(job) as JobInfo<T>),
      {
        connection: this.connection,
        prefix: this.prefix,
        concurrency: options.concurrency,
        settings: {
          backoffStrategy: (attemptsMade: number, _type?: string, _err?: Error, job?: { opts: { backoff?: unknown } }) => {
            const b = job?.opts.backoff as { delay?: number } | undefined;
            return backoffDelay(attemptsMade, { delayMs: b?.delay ?? DEFAULT_BACKOFF.delayMs, maxDelayMs: capOf(job) });
          },
        },
      },
    );
    worker.on('error', () => undefined); // connection trouble: the worker retries by itself
    this.workers.push(worker);
  }

  async listFailed(name: string): Promise<JobInfo[]> {
    const jobs = await this.queue(name).getFailed(0, 999);
    return jobs.map((j) => toInfo(j as Job));
  }

  async retry(jobId: string): Promise<boolean> {
    for (const queue of this.queues.values()) {
      const job = (await queue.getJob(jobId)) as Job | undefined;
      if (job && (await job.isFailed())) {
        await job.retry('failed', { resetAttemptsMade: true });
        return true;
      }
    }
    return false;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.connection.quit().catch(() => this.connection.disconnect());
  }

  /** Remove every key of this queue set (tests). */
  async obliterate(): Promise<void> {
    for (const q of this.queues.values()) await q.obliterate({ force: true });
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.prefix });
      q.on('error', () => undefined);
      this.queues.set(name, q);
    }
    return q;
  }
}

/** The cap travels in the job's backoff options (maxDelayMs, stored with them). */
function capOf(job: { opts: { backoff?: unknown } } | undefined): number {
  const b = job?.opts.backoff as { maxDelayMs?: number } | undefined;
  return b?.maxDelayMs ?? DEFAULT_BACKOFF.maxDelayMs;
}

function toBullOptions(opts: JobOptions) {
  const attempts = opts.attempts === undefined ? 1 : Number.isFinite(opts.attempts) ? opts.attempts : UNLIMITED_ATTEMPTS;
  const backoff = opts.backoff ?? DEFAULT_BACKOFF;
  return {
    jobId: opts.jobId,
    delay: opts.delayMs && opts.delayMs > 0 ? Math.ceil(opts.delayMs) : undefined,
    attempts,
    backoff: { type: BACKOFF_TYPE, delay: backoff.delayMs, maxDelayMs: backoff.maxDelayMs },
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: false,
  };
}

function toInfo(job: Job): JobInfo {
  return { id: String(job.id), name: job.name, data: job.data, attemptsMade: job.attemptsMade, failedReason: job.failedReason || undefined };
}
