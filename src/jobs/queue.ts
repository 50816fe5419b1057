/**
 * Background jobs behind one interface, with two implementations chosen by REDIS_URL:
 * - BullMQ on Redis (bullmq-queue.ts): durable, shared by every server process and node.
 * - In-process (memory-queue.ts): single node only and NOT durable: jobs queued but not yet done
 *   are lost when the process stops. Producers that need delivery across restarts (the outbox
 *   relay) re-derive their work from the database, so a restart loses at most in-flight retries.
 */

export interface Backoff {
  /** Delay before the first retry; doubled per failed attempt. */
  delayMs: number;
  /** Upper bound of the delay (the doubling stops there). */
  maxDelayMs: number;
}

export interface JobOptions {
  /** Deduplication: a job whose id is already queued, running or recently completed is not added again. */
  jobId?: string;
  /** Total attempts (default 1); Infinity → retried until it succeeds. */
  attempts?: number;
  backoff?: Backoff;
  /** Run no earlier than this many milliseconds from now (reminders); 0/undefined → at once. */
  delayMs?: number;
}

export interface JobInfo<T = unknown> {
  id: string;
  name: string;
  data: T;
  /** Attempts that failed before this one (0 on the first run). */
  attemptsMade: number;
  failedReason?: string;
}

export type JobHandler<T> = (job: JobInfo<T>) => Promise<void>;

export interface JobQueue {
  readonly kind: 'bullmq' | 'memory';
  add<T>(name: string, data: T, opts?: JobOptions): Promise<void>;
  /** Several jobs of one queue at once (one round trip with Redis). */
  addBulk<T>(name: string, jobs: Array<{ data: T; opts?: JobOptions }>): Promise<void>;
  /** Start processing the named queue in this process. */
  process<T>(name: string, handler: JobHandler<T>, options: { concurrency: number }): void;
  /** Jobs that used up their attempts (the dead list). */
  listFailed(name: string): Promise<JobInfo[]>;
  /** Move a dead job back to the queue with a fresh set of attempts; false if not found among failed jobs. */
  retry(jobId: string): Promise<boolean>;
  /** Stop taking jobs, wait for running ones, release connections. */
  close(): Promise<void>;
}

/** Largest attempt count handed to a backend for "unlimited". */
export const UNLIMITED_ATTEMPTS = 2 ** 31 - 1;

/** Exponential backoff, capped: delay · 2^(n−1) for the n-th retry, at most maxDelayMs. */
export function backoffDelay(failedAttempts: number, backoff: Backoff): number {
  const exp = Math.min(Math.max(failedAttempts - 1, 0), 30);
  return Math.min(backoff.delayMs * 2 ** exp, backoff.maxDelayMs);
}

export const DEFAULT_BACKOFF: Backoff = { delayMs: 1000, maxDelayMs: 5 * 60_000 };
