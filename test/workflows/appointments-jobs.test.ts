/** JobOptions.delayMs (added for appointment reminders) on both queue backends. */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BullMqJobQueue } from '../../src/jobs/bullmq-queue.js';
import { MemoryJobQueue } from '../../src/jobs/memory-queue.js';
import type { JobQueue } from '../../src/jobs/queue.js';

const BACKENDS: Array<'memory' | 'bullmq'> = process.env.REDIS_URL ? ['memory', 'bullmq'] : ['memory'];

describe.each(BACKENDS)('delayed jobs (%s)', (backend) => {
  let queue: JobQueue | undefined;
  afterEach(async () => {
    if (queue instanceof BullMqJobQueue) await queue.obliterate();
    await queue?.close();
    queue = undefined;
  });

  it('runs a delayed job no earlier than its delay, an undelayed one at once, and dedupes delayed ids', async () => {
    queue = backend === 'memory' ? new MemoryJobQueue() : new BullMqJobQueue(process.env.REDIS_URL!, `cbtest-${randomBytes(4).toString('hex')}`);
    const ran: Array<[string, number]> = [];
    queue.process<{ n: string }>('delays', async (job) => void ran.push([job.data.n, Date.now()]), { concurrency: 2 });
    const added = Date.now();
    await queue.add('delays', { n: 'later' }, { jobId: 'later', delayMs: 800 });
    await queue.add('delays', { n: 'again' }, { jobId: 'later', delayMs: 10 }); // same id: ignored
    await queue.add('delays', { n: 'now' }, { jobId: 'now' });
    const end = Date.now() + 10_000;
    while (ran.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200)); // room for a wrongly run duplicate
    expect(ran.map(([n]) => n)).toEqual(['now', 'later']);
    expect(ran[1]![1] - added).toBeGreaterThanOrEqual(790);
  });

  // In-process only: BullMQ keeps delayed jobs in Redis across close (that is its durability).
  it.runIf(backend === 'memory')('close() drops delayed jobs that are not due without waiting for them', async () => {
    queue = new MemoryJobQueue();
    queue.process('idle', async () => undefined, { concurrency: 1 });
    await queue.add('idle', {}, { delayMs: 60_000 });
    const t0 = Date.now();
    await queue.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    queue = undefined;
  });
});
