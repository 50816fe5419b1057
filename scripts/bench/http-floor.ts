/**
 * The HTTP floor for scripts/bench/search.ts: a bare express app answering every GET with the same
 * JSON body of FLOOR_BODY_BYTES bytes (a searchset Bundle padded to that size), with FLOOR_WORKERS
 * cluster workers like CareBridge's WORKERS. ETags are off, as in CareBridge (src/http/app.ts).
 * Started as a child process by search.ts (PORT, HOST from the environment); not meant to be run by hand.
 */
import cluster from 'node:cluster';
import express from 'express';

const port = Number(process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';
const bytes = Math.max(64, Number(process.env.FLOOR_BODY_BYTES ?? 1024));
const workers = Math.max(1, Number(process.env.FLOOR_WORKERS ?? 1));

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  const stop = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} else {
  const head = '{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Basic","id":"x","text":{"div":"';
  const tail = '"}}}]}';
  const body = head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
  const app = express();
  app.set('etag', false);
  app.set('x-powered-by', false);
  app.use((_req, res) => {
    res.status(200).type('application/fhir+json').send(body);
  });
  const server = app.listen(port, host);
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}
