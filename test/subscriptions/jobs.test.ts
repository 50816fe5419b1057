/** The job layer on both backends: in-process always, BullMQ when REDIS_URL is set. */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BullMqJobQueue } from '../../src/jobs/bullmq-queue.js';
import { MemoryJobQueue } from '../../src/jobs/memory-queue.js';
import { backoffDelay, type JobQueue } from '../../src/jobs/queue.js';

const BACKENDS: Array<'memory' | 'bullmq'> = process.env.REDIS_URL ? ['memory', 'bullmq'] : ['memory'];

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

it('backoff doubles and is capped', () => {
  const b = { delayMs: 1000, maxDelayMs: 300_000 };
  expect([1, 2, 3, 4].map((n) => backoffDelay(n, b))).toEqual([1000, 2000, 4000, 8000]);
  expect(backoffDelay(20, b)).toBe(300_000);
  expect(backoffDelay(10_000, b)).toBe(300_000);
});

describe.each(BACKENDS)('job queue (%s)', (backend) => {
  let queue: JobQueue | undefined;
  const open = (): JobQueue =>
    (queue = backend === 'memory' ? new MemoryJobQueue() : new BullMqJobQueue(process.env.REDIS_URL!, `cbtest-${randomBytes(4).toString('hex')}`));
  afterEach(async () => {
    if (queue instanceof BullMqJobQueue) await queue.obliterate();
    await queue?.close();
    queue = undefined;
  });

  it('runs each job id once (dedupe)', async () => {
    const q = open();
    const seen: string[] = [];
    q.process<{ n: number }>('dedupe', async (job) => void seen.push(`${job.id}:${job.data.n}`), { concurrency: 2 });
    await q.add('dedupe', { n: 1 }, { jobId: 'a' });
    await q.add('dedupe', { n: 2 }, { jobId: 'a' });
    await q.addBulk('dedupe', [{ data: { n: 3 }, opts: { jobId: 'b' } }, { data: { n: 4 }, opts: { jobId: 'a' } }]);
    await until(() => seen.length >= 2);
    await new Promise((r) => setTimeout(r, 300));
    await q.add('dedupe', { n: 5 }, { jobId: 'b' }); // completed ids are remembered too
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.sort()).toEqual(['a:1', 'b:3']);
  });

  it('retries with capped exponential backoff, unlimited attempts, until success', async () => {
    const q = open();
    const at: number[] = [];
    const attempts: number[] = [];
    q.process('flaky', async (job) => {
      at.push(Date.now());
      attempts.push(job.attemptsMade);
      if (at.length < 6) throw new Error(`fail ${at.length}`);
    }, { concurrency: 1 });
    await q.add('flaky', {}, { jobId: 'f1', attempts: Infinity, backoff: { delayMs: 40, maxDelayMs: 120 } });
    await until(() => at.length === 6);
    expect(attempts).toEqual([0, 1, 2, 3, 4, 5]);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(35);
    // capped: later gaps stay near 120 ms instead of 320, 640 ...
    expect(Math.max(...gaps)).toBeLessThan(1000);
    expect(gaps[4]).toBeGreaterThanOrEqual(110);
    expect(await q.listFailed('flaky')).toEqual([]);
  });

  it('lists jobs whose attempts ran out and retries them', async () => {
    const q = open();
    let healthy = false;
    let done = 0;
    q.process('dead', async () => {
      if (!healthy) throw new Error('receiver down');
      done++;
    }, { concurrency: 1 });
    await q.add('dead', { x: 1 }, { jobId: 'd1', attempts: 2, backoff: { delayMs: 20, maxDelayMs: 20 } });
    await until(async () => (await q.listFailed('dead')).length === 1);
    const [failed] = await q.listFailed('dead');
    expect(failed).toMatchObject({ id: 'd1', data: { x: 1 }, failedReason: 'receiver down' });
    healthy = true;
    expect(await q.retry('d1')).toBe(true);
    await until(() => done === 1);
    expect(await q.listFailed('dead')).toEqual([]);
    expect(await q.retry('nope')).toBe(false);
  });
});

it('in-process close() waits for every running job, across queues', async () => {
  const q = new MemoryJobQueue();
  const finished: string[] = [];
  q.process('fast', async () => void finished.push('fast'), { concurrency: 1 });
  q.process('slow', async () => {
    await new Promise((r) => setTimeout(r, 300));
    finished.push('slow');
  }, { concurrency: 1 });
  await q.add('slow', {});
  await new Promise((r) => setTimeout(r, 20));
  const closing = q.close();
  await expect(q.add('fast', {})).rejects.toThrow('closed');
  await closing;
  expect(finished).toEqual(['slow']);
});
