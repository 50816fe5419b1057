/**
 * Ingest benchmark: Synthea transaction Bundles POSTed to a CareBridge server (a child process on
 * a fresh PostgreSQL database), against a raw PostgreSQL baseline that inserts the same resources
 * as JSONB rows, one multi-row INSERT per bundle. See scripts/bench/README.md.
 *
 *   npx tsx scripts/bench/ingest.ts [--corpus DIR] [--bundles N] [--concurrency C] [--workers W]
 *                                   [--engine postgres|pglite] [--pg-url URL] [--cpu-prof DIR]
 *                                   [--repeat R] [--no-raw] [--echo-server]
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import pg from 'pg';
import type { Bundle, BundleEntry } from 'fhir/r4.js';
import {
  adminQuery,
  cpuBetween,
  createScratchDatabase,
  defaultCorpusDir,
  formatTable,
  listProcesses,
  loadCorpus,
  localPgUrl,
  machineBusySeconds,
  onInterrupt,
  parseArgs,
  percentile,
  positiveArg,
  postgresProcesses,
  processTree,
  replicate,
  REPO_ROOT,
  runConcurrent,
  type ScratchDatabase,
  type ServerChild,
  startServerChild,
} from './lib.js';

const WARM_UP_BUNDLES = 2;

interface Options {
  corpus: string;
  bundles: number;
  concurrency: number;
  workers: number;
  engine: 'postgres' | 'pglite';
  adminUrl: string;
  cpuProfDir?: string;
  raw: boolean;
  echoServer: boolean;
  repeat: number;
}

interface Workload {
  /** Request bodies (bundle JSON text), prepared before any timing. */
  texts: string[];
  resources: number[];
  warmUp: string[];
  bytes: number;
  corpusFiles: number;
}

interface Measurement {
  label: string;
  bundles: number;
  resources: number;
  seconds: number;
  latencies: number[];
  /** CPU seconds used during the measured phase (from /proc; undefined where not known). */
  cpu: { server?: number; postgres?: number; client: number; machine?: number };
}

function options(): Options {
  const args = parseArgs(process.argv.slice(2), {
    corpus: 'string',
    bundles: 'number',
    concurrency: 'number',
    workers: 'number',
    engine: 'string',
    'pg-url': 'string',
    'cpu-prof': 'string',
    'no-raw': 'boolean',
    repeat: 'number',
    'echo-server': 'boolean',
    help: 'boolean',
  });
  if (args.get('help')) {
    console.log('usage: npx tsx scripts/bench/ingest.ts [--corpus DIR] [--bundles N] [--concurrency C] [--workers W] [--engine postgres|pglite] [--pg-url URL] [--cpu-prof DIR] [--repeat R] [--no-raw] [--echo-server]');
    process.exit(0);
  }
  const engine = (args.get('engine') as string | undefined) ?? 'postgres';
  if (engine !== 'postgres' && engine !== 'pglite') throw new Error(`--engine must be postgres or pglite (got '${engine}')`);
  const positive = (name: string, fallback: number) => positiveArg(args, name, fallback);
  const adminUrl = localPgUrl(args);
  const cpuProf = args.get('cpu-prof') as string | undefined;
  return {
    corpus: resolve((args.get('corpus') as string | undefined) ?? defaultCorpusDir()),
    bundles: positive('bundles', 60),
    concurrency: positive('concurrency', 2),
    workers: engine === 'pglite' ? 1 : positive('workers', availableParallelism()),
    engine,
    adminUrl,
    cpuProfDir: cpuProf ? resolve(cpuProf) : undefined,
    raw: !args.get('no-raw'),
    echoServer: Boolean(args.get('echo-server')),
    repeat: positive('repeat', 1),
  };
}

function prepareWorkload(o: Options): Workload {
  const corpus = loadCorpus(o.corpus);
  const n = corpus.length;
  const texts: string[] = [];
  const resources: number[] = [];
  for (let k = 0; k < o.bundles; k++) {
    const source = corpus[k % n]!;
    const bundle = k < n ? source.bundle : replicate(source.bundle, `-${k}`);
    texts.push(k < n ? source.text : JSON.stringify(bundle));
    resources.push(bundle.entry?.length ?? 0);
  }
  // Warm-up bundles are distinct patients too, so they never collide with the measured ones.
  const warmUp = Array.from({ length: WARM_UP_BUNDLES }, (_, i) => JSON.stringify(replicate(corpus[i % n]!.bundle, `-warmup${i}`)));
  return { texts, resources, warmUp, bytes: texts.reduce((s, t) => s + Buffer.byteLength(t), 0), corpusFiles: n };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;
const busySince = (before: number | undefined) => {
  const now = machineBusySeconds();
  return before === undefined || now === undefined ? undefined : now - before;
};

// ---------------------------------------------------------------------------------------------
// CareBridge over HTTP

async function postBundle(base: string, text: string, entries: number, what: string): Promise<void> {
  const res = await fetch(`${base}/fhir`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
    body: text,
  });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${what}: HTTP ${res.status} (expected 200):\n${body.slice(0, 4000)}`);
  let parsed: Bundle;
  try {
    parsed = JSON.parse(body) as Bundle;
  } catch {
    throw new Error(`${what}: the response is not JSON:\n${body.slice(0, 4000)}`);
  }
  if (parsed.resourceType !== 'Bundle' || parsed.type !== 'transaction-response') {
    throw new Error(`${what}: expected a transaction-response Bundle, got ${parsed.resourceType}/${parsed.type}:\n${body.slice(0, 4000)}`);
  }
  const got = parsed.entry ?? [];
  if (got.length !== entries) throw new Error(`${what}: ${got.length} response entries for ${entries} request entries`);
  const bad = got.findIndex((e: BundleEntry) => e.response?.status !== '201 Created');
  if (bad >= 0) throw new Error(`${what}: entry ${bad} has status '${got[bad]!.response?.status}' (expected '201 Created'):\n${JSON.stringify(got[bad]).slice(0, 2000)}`);
}

async function runCareBridge(o: Options, w: Workload): Promise<Measurement & { stored?: number }> {
  let db: ScratchDatabase | undefined;
  let dataDir: string | undefined;
  let server: ServerChild | undefined;
  let forgetDataDir: (() => void) | undefined;
  try {
    const env: Record<string, string | undefined> = { LOG_LEVEL: 'warn', REDIS_URL: undefined, WORKERS: String(o.workers) };
    if (o.engine === 'postgres') {
      db = await createScratchDatabase(o.adminUrl);
      env.DATABASE_URL = db.url;
      env.DATA_DIR = undefined;
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'carebridge-bench-'));
      dataDir = dir;
      forgetDataDir = onInterrupt(async () => rmSync(dir, { recursive: true, force: true }));
      env.DATABASE_URL = undefined;
      env.DATA_DIR = dataDir;
    }
    const nodeFlags = o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [];
    const t0 = Date.now();
    server = await startServerChild({ env, nodeFlags, echo: o.echoServer });
    console.log(`server ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (${o.engine}${db ? ` database ${db.name}` : ` DATA_DIR ${dataDir}`}, port ${server.port})`);
    const base = server.base;
    const warmUpEntries = w.warmUp.map((t) => (JSON.parse(t) as Bundle).entry?.length ?? 0);
    for (let i = 0; i < w.warmUp.length; i++) await postBundle(base, w.warmUp[i]!, warmUpEntries[i]!, `warm-up bundle ${i}`);
    if (db) await adminQuery(o.adminUrl, 'CHECKPOINT');
    const before = listProcesses();
    const machineBefore = machineBusySeconds();
    const clientBefore = process.cpuUsage();
    const { latencies, seconds } = await runConcurrent(w.texts.length, o.concurrency, (k) =>
      postBundle(base, w.texts[k]!, w.resources[k]!, `bundle ${k}`).catch((error: Error) => {
        throw new Error(`${error.message}\n--- server output ---\n${server!.tail()}`);
      }),
    );
    const client = cpuSeconds(process.cpuUsage(clientBefore));
    const machine = busySince(machineBefore);
    const after = listProcesses();
    const cpu = {
      client,
      machine,
      server: after.length ? cpuBetween(before, after, processTree(server.child.pid!, after)) : undefined,
      postgres: after.length && db ? cpuBetween(before, after, postgresProcesses(db.name, after)) : undefined,
    };
    let stored: number | undefined;
    if (db) {
      const rows = await adminQuery<{ n: string }>(db.url, 'SELECT count(*) AS n FROM tenant_default.resource');
      stored = Number(rows[0]!.n) - sum(warmUpEntries);
    }
    const label = o.engine === 'postgres' ? `CareBridge (workers ${o.workers})` : 'CareBridge (pglite, 1 process)';
    return { label, bundles: w.texts.length, resources: sum(w.resources), seconds, latencies, cpu, stored };
  } finally {
    await server?.stop().catch((error) => console.error(`stopping the server failed: ${(error as Error).message}`));
    await db?.drop().catch((error) => console.error(`dropping ${db!.name} failed: ${(error as Error).message}`));
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    forgetDataDir?.();
  }
}

// ---------------------------------------------------------------------------------------------
// Raw PostgreSQL baseline

async function runRaw(o: Options, w: Workload): Promise<Measurement> {
  const db = await createScratchDatabase(o.adminUrl, '_raw');
  const pool = new pg.Pool({ connectionString: db.url, max: o.concurrency });
  pool.on('error', () => undefined);
  try {
    await pool.query('CREATE TABLE resource (id text PRIMARY KEY, resource_type text, content jsonb)');
    // Same work per bundle from the same input (bundle text): parse, one JSON text per resource,
    // one multi-row INSERT in one transaction. No validation, versioning, references or indexes.
    const insertBundle = async (text: string) => {
      const bundle = JSON.parse(text) as Bundle;
      const entries = bundle.entry ?? [];
      const ids = entries.map(() => randomUUID());
      const types = entries.map((e) => e.resource!.resourceType);
      const contents = entries.map((e) => JSON.stringify(e.resource));
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('INSERT INTO resource (id, resource_type, content) SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])', [ids, types, contents]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    };
    for (const t of w.warmUp) await insertBundle(t);
    await adminQuery(o.adminUrl, 'CHECKPOINT');
    const before = listProcesses();
    const machineBefore = machineBusySeconds();
    const clientBefore = process.cpuUsage();
    const { latencies, seconds } = await runConcurrent(w.texts.length, o.concurrency, (k) => insertBundle(w.texts[k]!));
    const client = cpuSeconds(process.cpuUsage(clientBefore));
    const machine = busySince(machineBefore);
    const after = listProcesses();
    const cpu = { client, machine, postgres: after.length ? cpuBetween(before, after, postgresProcesses(db.name, after)) : undefined };
    const rows = await pool.query<{ n: string }>('SELECT count(*) AS n FROM resource');
    const expected = sum(w.resources) + sum(w.warmUp.map((t) => (JSON.parse(t) as Bundle).entry?.length ?? 0));
    if (Number(rows.rows[0]!.n) !== expected) throw new Error(`raw PostgreSQL: ${rows.rows[0]!.n} rows stored, expected ${expected}`);
    return { label: `raw PostgreSQL (pool ${o.concurrency})`, bundles: w.texts.length, resources: sum(w.resources), seconds, latencies, cpu };
  } finally {
    await pool.end().catch(() => undefined);
    await db.drop().catch((error) => console.error(`dropping ${db.name} failed: ${(error as Error).message}`));
  }
}

// ---------------------------------------------------------------------------------------------

function row(m: Measurement): string[] {
  const ms = (p: number) => percentile(m.latencies, p).toFixed(0);
  return [m.label, String(m.bundles), String(m.resources), m.seconds.toFixed(2), (m.resources / m.seconds).toFixed(0), ms(50), ms(95), ms(99)];
}

const rate = (m: Measurement) => m.resources / m.seconds;

/** The run with the median throughput (the lower middle one for an even count). */
function median(runs: Measurement[]): Measurement {
  const sorted = [...runs].sort((a, b) => rate(a) - rate(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

async function main(): Promise<void> {
  const o = options();
  const w = prepareWorkload(o);
  const version = await adminQuery<{ v: string }>(o.adminUrl, "SELECT current_setting('server_version') AS v");
  const corpusShown = relative(REPO_ROOT, o.corpus).startsWith('../..') ? o.corpus : relative(REPO_ROOT, o.corpus);
  const load = loadavg()[0]!;
  console.log(
    `machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown cpu'}), node ${process.version}, ${process.platform}/${process.arch}, ` +
      `PostgreSQL ${version[0]!.v} at ${new URL(o.adminUrl).host}, load average ${load.toFixed(2)}`,
  );
  console.log(
    `settings: corpus ${corpusShown} (${w.corpusFiles} patient bundles), ` +
      `bundles ${o.bundles} (${(w.bytes / 1024 / 1024).toFixed(1)} MB), concurrency ${o.concurrency}, engine ${o.engine}` +
      `${o.engine === 'postgres' ? `, workers ${o.workers}` : ''}, warm-up ${WARM_UP_BUNDLES} bundles (not counted)` +
      `${o.repeat > 1 ? `, repeat ${o.repeat} (median run shown)` : ''}`,
  );
  if (o.engine === 'pglite') console.log('note: CareBridge runs on embedded PGlite (one process); the baseline is still the raw PostgreSQL server.');
  const cbRuns: Measurement[] = [];
  const rawRuns: Measurement[] = [];
  for (let r = 0; r < o.repeat; r++) {
    const cb = await runCareBridge(o, w);
    if (cb.stored !== undefined && cb.stored !== cb.resources) console.warn(`warning: CareBridge stored ${cb.stored} resources, expected ${cb.resources}`);
    cbRuns.push(cb);
    if (o.raw) rawRuns.push(await runRaw(o, w));
    if (o.repeat > 1) {
      const raw = rawRuns[r];
      console.log(`run ${r + 1}/${o.repeat}: CareBridge ${rate(cb).toFixed(0)} resources/s${raw ? `, raw PostgreSQL ${rate(raw).toFixed(0)} resources/s (${(rate(raw) / rate(cb)).toFixed(1)}x)` : ''}`);
    }
  }
  if (o.cpuProfDir) console.log(`server CPU profiles written to ${o.cpuProfDir}`);
  const cb = median(cbRuns);
  const raw = rawRuns.length ? median(rawRuns) : undefined;
  const results = raw ? [cb, raw] : [cb];
  console.log('');
  console.log(formatTable(['', 'bundles', 'resources', 'seconds', 'resources/s', 'bundle p50 ms', 'p95 ms', 'p99 ms'], results.map(row)));
  const secs = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(2));
  const other = (m: Measurement) => (m.cpu.machine === undefined ? undefined : Math.max(0, m.cpu.machine - (m.cpu.server ?? 0) - (m.cpu.postgres ?? 0) - m.cpu.client));
  console.log('');
  console.log(
    formatTable(
      ['CPU seconds in the measured phase', 'server', 'PostgreSQL', 'bench client', 'other processes', 'wall s'],
      results.map((m) => [m.label, secs(m.cpu.server), secs(m.cpu.postgres), secs(m.cpu.client), secs(other(m)), m.seconds.toFixed(2)]),
    ),
  );
  const busy = results.filter((m) => (other(m) ?? 0) > 0.1 * m.seconds * availableParallelism());
  if (busy.length) console.log(`note: other processes used more than 10% of the machine during ${busy.map((m) => m.label).join(' and ')}; figures are noisy.`);
  if (raw) {
    console.log('');
    console.log(`ratio: raw PostgreSQL is ${(rate(raw) / rate(cb)).toFixed(1)}x faster than CareBridge`);
  }
}

main().catch((error) => {
  console.error(`\ningest benchmark FAILED: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
});
