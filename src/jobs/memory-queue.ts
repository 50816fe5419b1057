/**
 * The in-process job queue (REDIS_URL unset): single node only, not durable (see queue.ts).
 * Same semantics as the BullMQ one: dedupe by jobId, retries with capped exponential backoff,
 * a dead list of jobs whose attempts ran out, retry from it.
 */
import { backoffDelay, DEFAULT_BACKOFF, type JobHandler, type JobInfo, type JobOptions, type JobQueue } from './queue.js';

interface MemoryJob {
  id: string;
  name: string;
  data: unknown;
  attemptsMade: number;
  opts: JobOptions;
  failedReason?: string;
}

interface Lane {
  handler?: JobHandler<unknown>;
  concurrency: number;
  running: number;
  ready: MemoryJob[];
}

/** Ids remembered after completion for deduplication (oldest forgotten first). */
const REMEMBERED_IDS = 100_000;

export class MemoryJobQueue implements JobQueue {
  readonly kind = 'memory' as const;
  private readonly lanes = new Map<string, Lane>();
  /** Every job id queued, running, delayed or completed recently (insertion order = age). */
  private readonly known = new Set<string>();
  private readonly failed = new Map<string, MemoryJob>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly idle = new Set<() => void>();
  private nextId = 1;
  private closed = false;

  async add<T>(name: string, data: T, opts: JobOptions = {}): Promise<void> {
    this.enqueue(name, data, opts);
  }

  async addBulk<T>(name: string, jobs: Array<{ data: T; opts?: JobOptions }>): Promise<void> {
    for (const j of jobs) this.enqueue(name, j.data, j.opts ?? {});
  }

  process<T>(name: string, handler: JobHandler<T>, options: { concurrency: number }): void {
    const lane = this.lane(name);
    lane.handler = handler as JobHandler<unknown>;
    lane.concurrency = Math.max(1, options.concurrency);
    this.pump(lane);
  }

  async listFailed(name: string): Promise<JobInfo[]> {
    return [...this.failed.values()].filter((j) => j.name === name).map(info);
  }

  async retry(jobId: string): Promise<boolean> {
    const job = this.failed.get(jobId);
    if (!job) return false;
    this.failed.delete(jobId);
    job.attemptsMade = 0;
    job.failedReason = undefined;
    const lane = this.lane(job.name);
    lane.ready.push(job);
    this.pump(lane);
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const running = () => [...this.lanes.values()].some((l) => l.running > 0);
    while (running()) await new Promise<void>((resolve) => this.idle.add(resolve));
  }

  private lane(name: string): Lane {
    let lane = this.lanes.get(name);
    if (!lane) this.lanes.set(name, (lane = { concurrency: 1, running: 0, ready: [] }));
    return lane;
  }

  private enqueue(name: string, data: unknown, opts: JobOptions): void {
    if (this.closed) throw new Error('job queue is closed');
    const id = opts.jobId ?? `auto-${this.nextId++}`;
    // Job ids are unique per queue (as in BullMQ): the relay gives every consumer's queue the same id for one event.
    const key = `${name}\u0000${id}`;
    if (this.known.has(key)) return;
    this.known.add(key);
    if (this.known.size > REMEMBERED_IDS) this.known.delete(this.known.values().next().value!);
    const lane = this.lane(name);
    const job: MemoryJob = { id, name, data, attemptsMade: 0, opts };
    if (opts.delayMs && opts.delayMs > 0) {
      // Delayed: joins the lane when due (lost on restart like every in-process job).
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        lane.ready.push(job);
        this.pump(lane);
      }, opts.delayMs);
      this.timers.add(timer);
      return;
    }
    lane.ready.push(job);
    this.pump(lane);
  }

  private pump(lane: Lane): void {
    while (!this.closed && lane.handler && lane.running < lane.concurrency && lane.ready.length > 0) {
      const job = lane.ready.shift()!;
      lane.running++;
      void this.run(lane, job);
    }
  }

  private async run(lane: Lane, job: MemoryJob): Promise<void> {
    try {
      await lane.handler!(info(job));
    } catch (error) {
      job.attemptsMade++;
      job.failedReason = error instanceof Error ? error.message : String(error);
      const attempts = job.opts.attempts ?? 1;
      if (job.attemptsMade >= attempts) {
        this.failed.set(job.id, job);
      } else if (!this.closed) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          lane.ready.push(job);
          this.pump(lane);
        }, backoffDelay(job.attemptsMade, job.opts.backoff ?? DEFAULT_BACKOFF));
        this.timers.add(timer);
      }
    } finally {
      lane.running--;
      this.pump(lane);
      // close() waiters re-check every lane when woken.
      for (const wake of this.idle) wake();
      this.idle.clear();
    }
  }
}

function info(job: MemoryJob): JobInfo {
  return { id: job.id, name: job.name, data: job.data, attemptsMade: job.attemptsMade, failedReason: job.failedReason };
}
