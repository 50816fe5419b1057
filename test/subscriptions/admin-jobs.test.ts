/**
 * /admin/jobs over HTTP: the dead list of a queue and retrying a dead job, on the in-process queue
 * and (REDIS_URL set) on BullMQ; bad input → OperationOutcome with 400/404. The router is mounted
 * on an express app of its own with a real queue whose handler fails until told otherwise.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobsAdminRouter } from '../../src/http/admin-jobs.js';
import { createJobQueue } from '../../src/jobs/index.js';
import type { JobQueue } from '../../src/jobs/queue.js';
import { call } from '../support/server.js';
import { removeKeys, until } from './receiver.js';

const KINDS = process.env.REDIS_URL ? (['in-process', 'redis'] as const) : (['in-process'] as const);

describe.each(KINDS)('/admin/jobs, %s queue', (kind) => {
  const prefix = `cbtest-${randomBytes(5).toString('hex')}`;
  let queue: JobQueue;
  let server: Server;
  let base = '';
  let failing = true;
  const handled: string[] = [];

  beforeAll(async () => {
    queue = createJobQueue({ redisUrl: kind === 'redis' ? process.env.REDIS_URL : undefined, prefix });
    queue.process<{ n: number }>('test-jobs', async (job) => {
      if (failing) throw new Error(`endpoint down (${job.data.n})`);
      handled.push(job.id);
    }, { concurrency: 2 });
    const app = express();
    app.use('/admin/jobs', createJobsAdminRouter(queue));
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/jobs`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await queue?.close();
    if (kind === 'redis') await removeKeys(prefix);
  });

  it('lists dead jobs with their reason and retries one with fresh attempts', async () => {
    await queue.add('test-jobs', { n: 1 }, { jobId: 'job-1', attempts: 2, backoff: { delayMs: 10, maxDelayMs: 10 } });
    await until(async () => (await call(base, 'GET', '/failed?queue=test-jobs')).body.jobs.length === 1, 15_000, 'dead job');
    const listed = await call(base, 'GET', '/failed?queue=test-jobs');
    expect(listed.status).toBe(200);
    expect(listed.body.queue).toBe('test-jobs');
    expect(listed.body.jobs[0]).toMatchObject({ id: 'job-1', data: { n: 1 }, attemptsMade: 2, failedReason: 'endpoint down (1)' });
    expect((await call(base, 'GET', '/failed?queue=other-queue')).body.jobs).toEqual([]);

    failing = false;
    const retried = await call(base, 'POST', '/test-jobs/job-1/retry');
    expect(retried.status).toBe(200);
    expect(retried.body).toEqual({ queue: 'test-jobs', id: 'job-1', retried: true });
    await until(() => handled.includes('job-1'), 15_000, 'retried job handled');
    expect((await call(base, 'GET', '/failed?queue=test-jobs')).body.jobs).toEqual([]);
    // Not (any more) on the dead list → 404.
    const again = await call(base, 'POST', '/test-jobs/job-1/retry');
    expect(again.status).toBe(404);
    expect(again.body.resourceType).toBe('OperationOutcome');
  });

  it('bad input: 400 / 404 OperationOutcome', async () => {
    for (const [method, path, status] of [
      ['GET', '/failed', 400],
      ['GET', '/failed?queue=', 400],
      ['GET', '/failed?queue=a&queue=b', 400],
      ['GET', '/failed?queue=no%20spaces', 400],
      ['POST', '/test-jobs/nope/retry', 404],
      ['POST', '/other-queue/job-1/retry', 404],
      ['GET', '/nothing-here', 404],
    ] as const) {
      const r = await call(base, method, path);
      expect(r.status, `${method} ${path}`).toBe(status);
      expect(r.body.resourceType).toBe('OperationOutcome');
    }
  });
});
