/**
 * Subscription delivery: S active R4 rest-hook Subscriptions (criteria Observation?code=bench|k,
 * full-resource payload) on CareBridge (src/main.ts as a child process, fresh PostgreSQL database),
 * a stream of Observation creates at a fixed rate (open loop), write i matching subscription
 * i mod S. A receiver (bare express, in this process) records when each notification arrives.
 * Prints delivered/s and p50/p95/p99 latency from commit (the 201 response arriving) to receipt,
 * beside a baseline in the same run: this process POSTing the same bodies straight to the same
 * receiver at the same rate (the floor of "an HTTP POST on this machine").
 *
 *   npx tsx scripts/bench/subscriptions.ts [--subscriptions 100] [--rate 100] [--duration 30]
 *     [--baseline-duration 10] [--workers 1] [--redis-url URL] [--pg-url URL] [--echo]
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
import { createScratchDatabase, formatTable, parseArgs, percentile, positiveArg, localPgUrl, startServerChild } from './lib.js';

const args = parseArgs(process.argv.slice(2), {
  subscriptions: 'number',
  rate: 'number',
  duration: 'number',
  'baseline-duration': 'number',
  workers: 'number',
  'redis-url': 'string',
  'pg-url': 'string',
  echo: 'boolean',
});
const S = positiveArg(args, 'subscriptions', 100);
const RATE = positiveArg(args, 'rate', 100);
const DURATION = positiveArg(args, 'duration', 30);
const BASELINE_DURATION = positiveArg(args, 'baseline-duration', Math.min(DURATION, 10));
const WORKERS = positiveArg(args, 'workers', 1);
const ADMIN = localPgUrl(args);
const DRAIN_MS = 30_000;

/** Receipt times by key: Observation id (CareBridge) or sequence number (baseline). */
const received = new Map<string, number>();
let duplicates = 0;

async function startReceiver(): Promise<{ server: Server; port: number }> {
  const app = express();
  app.set('etag', false);
  // CareBridge: PUT /hook/<k>/Observation/<id> (full resource); baseline: POST /direct/<n>.
  app.put('/hook/:k/Observation/:id', (req, res) => {
    const now = performance.now();
    if (received.has(req.params.id)) duplicates++;
    else received.set(req.params.id, now);
    req.resume();
    req.on('end', () => res.status(200).end());
  });
  app.post('/direct/:n', (req, res) => {
    const now = performance.now();
    received.set(`direct-${req.params.n}`, now);
    req.resume();
    req.on('end', () => res.status(200).end());
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  server.keepAliveTimeout = 65_000;
  return { server, port: (server.address() as AddressInfo).port };
}

/** Call send(i) at RATE per second for seconds; returns when every call has finished. */
async function openLoop(seconds: number, send: (i: number) => Promise<void>): Promise<number> {
  const total = Math.round(seconds * RATE);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(send(i));
  }
  await Promise.all(inflight);
  return total;
}

function observation(k: number, i: number): string {
  return JSON.stringify({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://bench', code: `sub-${k}` }] }, valueQuantity: { value: i } });
}

function summary(name: string, latencies: number[], count: number, seconds: number): string[] {
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
  return [name, String(latencies.length), String(count - latencies.length), (latencies.length / seconds).toFixed(1), f(percentile(latencies, 50)), f(percentile(latencies, 95)), f(percentile(latencies, 99))];
}

/** The run's queues in Redis (keys under its prefix) are removed at the end. */
async function removeRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const receiver = await startReceiver();
  const db = await createScratchDatabase(ADMIN);
  const redisUrl = args.get('redis-url') as string | undefined;
  const prefix = `cbbench-${Date.now().toString(36)}`;
  const server = await startServerChild({
    env: { DATABASE_URL: db.url, WORKERS: String(WORKERS), LOG_LEVEL: 'warn', AUTH_MODE: 'open', REDIS_URL: redisUrl, REDIS_PREFIX: prefix },
    echo: args.get('echo') === true,
  });
  const rows: string[][] = [];
  try {
    const fhir = `${server.base}/fhir`;
    const headers = { 'content-type': 'application/fhir+json' };
    for (let k = 0; k < S; k++) {
      const res = await fetch(`${fhir}/Subscription`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          resourceType: 'Subscription',
          status: 'requested',
          reason: 'bench',
          criteria: `Observation?code=http://bench|sub-${k}`,
          channel: { type: 'rest-hook', endpoint: `http://127.0.0.1:${receiver.port}/hook/${k}`, payload: 'application/fhir+json' },
        }),
      });
      if (res.status !== 201) throw new Error(`creating Subscription ${k}: HTTP ${res.status} ${await res.text()}`);
    }
    // Warm-up (not counted): one write per subscription's criteria path.
    for (let i = 0; i < 20; i++) await (await fetch(`${fhir}/Observation`, { method: 'POST', headers, body: observation(i % S, -1) })).arrayBuffer();
    await new Promise((r) => setTimeout(r, 2000));
    received.clear();
    duplicates = 0;

    // CareBridge: commit (201 arrives) → notification arrives.
    const committed = new Map<string, number>();
    const bodies = Array.from({ length: Math.round(DURATION * RATE) }, (_, i) => observation(i % S, i));
    const t0 = performance.now();
    const writes = await openLoop(DURATION, async (i) => {
      const res = await fetch(`${fhir}/Observation`, { method: 'POST', headers, body: bodies[i] });
      const at = performance.now();
      const body = (await res.json()) as { id?: string };
      if (res.status !== 201 || !body.id) throw new Error(`write ${i}: HTTP ${res.status}`);
      committed.set(body.id, at);
    });
    const deadline = performance.now() + DRAIN_MS;
    while ([...committed.keys()].some((id) => !received.has(id)) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const lastReceipt = Math.max(...[...committed.keys()].map((id) => received.get(id) ?? 0));
    const latencies = [...committed].filter(([id]) => received.has(id)).map(([id, at]) => received.get(id)! - at);
    rows.push(summary(`CareBridge (${S} subscriptions)`, latencies, writes, (lastReceipt - t0) / 1000));

    // Baseline: the same bodies POSTed straight to the receiver at the same rate.
    received.clear();
    const sent = new Map<number, number>();
    const b0 = performance.now();
    const posts = await openLoop(BASELINE_DURATION, async (i) => {
      sent.set(i, performance.now());
      const res = await fetch(`http://127.0.0.1:${receiver.port}/direct/${i}`, { method: 'POST', headers, body: bodies[i % bodies.length] });
      await res.arrayBuffer();
    });
    const direct = [...sent].map(([i, at]) => received.get(`direct-${i}`)! - at);
    rows.push(summary('baseline: direct POST', direct, posts, (performance.now() - b0) / 1000));
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    await server.stop();
    await db.drop();
    if (redisUrl) await removeRedisKeys(redisUrl, prefix);
    receiver.server.closeAllConnections();
    receiver.server.close();
  }
  console.log(`\n${S} rest-hook subscriptions, ${RATE} writes/s for ${DURATION} s (baseline ${BASELINE_DURATION} s), WORKERS=${WORKERS}, queue ${redisUrl ? 'BullMQ/Redis' : 'in-process'}`);
  console.log(formatTable(['', 'delivered', 'missing', 'delivered/s', 'p50 ms', 'p95 ms', 'p99 ms'], rows));
  if (duplicates > 0) console.log(`duplicate deliveries: ${duplicates}`);
}

await main();
