/**
 * Helpers shared by the benchmarks in scripts/bench: corpus loading and replication, scratch
 * databases, the CareBridge server as a child process, bounded-concurrency runners (by count and
 * by duration), latency percentiles, a plain-text table, a seeded PRNG and text-level replicas of
 * bundles with distinct patients (BundleReplicator).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Bundle, Patient } from 'fhir/r4.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---------------------------------------------------------------------------------------------
// Command line

/** `--name value` / `--name=value` / `--flag` → map; anything else is an error. */
export function parseArgs(argv: string[], known: Record<string, 'string' | 'number' | 'boolean'>): Map<string, string | number | boolean> {
  const out = new Map<string, string | number | boolean>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(arg);
    if (!m) throw new Error(`unexpected argument '${arg}'`);
    const name = m[1]!;
    const kind = known[name];
    if (!kind) throw new Error(`unknown option --${name} (known: ${Object.keys(known).map((k) => `--${k}`).join(', ')})`);
    if (kind === 'boolean') {
      out.set(name, m[2] === undefined ? true : !/^(0|false|no)$/i.test(m[2]));
      continue;
    }
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) throw new Error(`--${name} needs a value`);
    if (kind === 'number') {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer (got '${raw}')`);
      out.set(name, n);
    } else {
      out.set(name, raw);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Corpus

export interface CorpusFile {
  name: string;
  text: string;
  bundle: Bundle;
}

/** The default corpus: ../shared/corpora/synthea beside the repo if present, else fixtures/synthea. */
export function defaultCorpusDir(): string {
  const shared = resolve(REPO_ROOT, '..', 'shared', 'corpora', 'synthea');
  return existsSync(shared) ? shared : join(REPO_ROOT, 'fixtures', 'synthea');
}

/** Synthea patient bundles: *.json with an underscore in the name (not hospital/practitionerInformation). */
export function loadCorpus(dir: string): CorpusFile[] {
  if (!existsSync(dir)) throw new Error(`corpus directory not found: ${dir}`);
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f.includes('_') && !/^(hospital|practitioner)Information/.test(f))
    .sort();
  if (names.length === 0) throw new Error(`no patient bundles (*_*.json) in ${dir}`);
  return names.map((name) => {
    const text = readFileSync(join(dir, name), 'utf8');
    const bundle = JSON.parse(text) as Bundle;
    if (bundle.resourceType !== 'Bundle' || bundle.type !== 'transaction') throw new Error(`${name} is not a transaction Bundle`);
    return { name, text, bundle };
  });
}

const URN_UUID = /^urn:uuid:[0-9a-fA-F-]{36}$/;

/**
 * A distinct copy of a bundle: every urn:uuid fullUrl (and every reference to it) gets a fresh
 * uuid, and Patient identifier values get `suffix`, so the copy is a different patient.
 */
export function replicate(bundle: Bundle, suffix: string): Bundle {
  const copy = structuredClone(bundle);
  const fresh = new Map<string, string>();
  for (const e of copy.entry ?? []) {
    if (e.fullUrl && URN_UUID.test(e.fullUrl)) {
      const next = `urn:uuid:${randomUUID()}`;
      fresh.set(e.fullUrl, next);
      e.fullUrl = next;
    }
  }
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
    } else if (node !== null && typeof node === 'object') {
      const obj = node as Record<string, unknown>;
      for (const [key, value] of Object.entries(obj)) {
        if (key === 'reference' && typeof value === 'string') {
          const mapped = fresh.get(value);
          if (mapped) obj.reference = mapped;
        } else if (typeof value === 'object') {
          walk(value);
        }
      }
    }
  };
  for (const e of copy.entry ?? []) {
    walk(e.resource);
    if (e.resource?.resourceType === 'Patient') {
      for (const identifier of (e.resource as Patient).identifier ?? []) {
        if (identifier.value !== undefined) identifier.value = `${identifier.value}${suffix}`;
      }
    }
  }
  return copy;
}

// ---------------------------------------------------------------------------------------------
// Cleanup on Ctrl-C / SIGTERM: the server child runs in its own process group (it would not get
// the terminal's SIGINT), so stop it and drop the scratch databases before exiting.

const cleanups = new Set<() => Promise<void>>();
let handlersInstalled = false;

/** Run fn if the benchmark is interrupted; call the returned function once fn is no longer needed. */
export function onInterrupt(fn: () => Promise<void>): () => void {
  if (!handlersInstalled) {
    handlersInstalled = true;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        console.error(`\n${signal}: cleaning up`);
        void (async () => {
          for (const cleanup of [...cleanups].reverse()) await cleanup().catch((error) => console.error(`cleanup failed: ${(error as Error).message}`));
          process.exit(130);
        })();
      });
    }
  }
  cleanups.add(fn);
  return () => void cleanups.delete(fn);
}

// ---------------------------------------------------------------------------------------------
// Scratch databases on the local PostgreSQL server

export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export interface ScratchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** CREATE DATABASE carebridge_bench_<random><suffix> [options]; drop() removes it (WITH (FORCE)). */
export async function createScratchDatabase(adminUrl: string, suffix = '', options = ''): Promise<ScratchDatabase> {
  const name = `carebridge_bench_${randomBytes(5).toString('hex')}${suffix}`;
  if (!/^carebridge_bench_[a-z0-9_]+$/.test(name)) throw new Error(`bad database name ${name}`);
  await adminQuery(adminUrl, `CREATE DATABASE ${name}${options ? ` ${options}` : ''}`);
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    dropped = true;
    forget();
  };
  const forget = onInterrupt(drop);
  return { name, url: withDatabase(adminUrl, name), drop };
}

export async function adminQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, sql: string, params?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// The CareBridge server as a child process

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => (port ? resolvePort(port) : reject(new Error('could not read the free port'))));
    });
  });
}

export interface ServerChild {
  child: ChildProcess;
  port: number;
  base: string;
  /** Last lines the server wrote (stdout + stderr), for error messages. */
  tail(): string;
  /** SIGTERM, wait for the exit (SIGKILL to its process group after timeoutMs). */
  stop(timeoutMs?: number): Promise<void>;
}

export interface ServerOptions {
  env: Record<string, string | undefined>;
  /** Script to run instead of src/main.ts (relative to the repo root), e.g. a bare HTTP floor app. */
  script?: string;
  /** Extra node flags for the server process, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  nodeFlags?: string[];
  readyTimeoutMs?: number;
  /** Echo the server's output lines to our stderr. */
  echo?: boolean;
}

/** Start `node --import tsx src/main.ts` (or options.script) on a free port of 127.0.0.1 and wait for GET /readyz → 200. */
export async function startServerChild(options: ServerOptions): Promise<ServerChild> {
  const port = await freePort();
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, MLLP_PORT: 'off', AUTH_MODE: 'open', ...options.env, PORT: String(port), HOST: '127.0.0.1' })) {
    if (v !== undefined) env[k] = v;
  }
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), '--import', 'tsx', options.script ?? 'src/main.ts'], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group, so that a stuck server and its cluster workers can be killed together.
    detached: true,
  });
  const lines: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > 200) lines.shift();
      if (options.echo) process.stderr.write(`[server] ${line}\n`);
    }
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolveExit) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolveExit();
    });
  });
  const tail = () => lines.slice(-40).join('\n');
  const stop = async (timeoutMs = 20_000) => {
    forget();
    if (exited) return;
    child.kill('SIGTERM');
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    if ((await Promise.race([exit, timer])) === 'timeout' && !exited) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      await exit;
    }
  };
  const forget = onInterrupt(() => stop(5_000));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
  try {
    for (;;) {
      if (exited) throw new Error(`the server exited before it was ready (code ${exited.code}, signal ${exited.signal}):\n${tail()}`);
      try {
        const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`the server was not ready within ${options.readyTimeoutMs ?? 120_000} ms:\n${tail()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (error) {
    await stop(5_000);
    throw error;
  }
  return { child, port, base, tail, stop };
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux; elsewhere the snapshots are empty and the figures blank)

export interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string;
  /** utime + stime, seconds */
  cpu: number;
}

const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux

export function listProcesses(): ProcInfo[] {
  if (process.platform !== 'linux') return [];
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      out.push({ pid: Number(name), ppid: Number(rest[1]), cmdline, cpu: (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS });
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** CPU seconds all cores have been busy since boot (/proc/stat), undefined off Linux. */
export function machineBusySeconds(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
}

/** root and all its descendants. */
export function processTree(root: number, procs: ProcInfo[]): Set<number> {
  const tree = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) {
      if (!tree.has(p.pid) && tree.has(p.ppid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
  }
  return tree;
}

/** PostgreSQL server processes working for `database`, plus the shared WAL writer, checkpointer and background writer. */
export function postgresProcesses(database: string, procs: ProcInfo[]): Set<number> {
  const shared = /^postgres: .*(walwriter|checkpointer|background writer)\s*$/;
  return new Set(procs.filter((p) => p.cmdline.startsWith('postgres: ') && (p.cmdline.includes(` ${database} `) || shared.test(p.cmdline))).map((p) => p.pid));
}

/** CPU seconds the processes `pids` (as of `after`) used between the two snapshots. */
export function cpuBetween(before: ProcInfo[], after: ProcInfo[], pids: Set<number>): number {
  const earlier = new Map(before.map((p) => [p.pid, p.cpu]));
  let total = 0;
  for (const p of after) if (pids.has(p.pid)) total += p.cpu - (earlier.get(p.pid) ?? 0);
  return total;
}

// ---------------------------------------------------------------------------------------------
// Running and measuring

/** Run task(i) for i in [0, count) with `concurrency` workers; returns per-task latency in ms. */
export async function runConcurrent(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<{ latencies: number[]; seconds: number }> {
  const latencies = new Array<number>(count);
  let next = 0;
  let failed = false;
  const start = process.hrtime.bigint();
  const worker = async () => {
    while (!failed) {
      const i = next++;
      if (i >= count) return;
      const t0 = process.hrtime.bigint();
      try {
        await task(i);
      } catch (error) {
        failed = true;
        throw error;
      }
      latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
  return { latencies, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** A plain-text table with right-aligned numeric columns (the first column left-aligned). */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * Run task(worker) over and over with `concurrency` workers until `durationMs` has passed (a
 * request in flight at the deadline is finished and counted). Returns every latency in ms, in
 * completion order, and the wall time. `maxRequests` bounds the loop whatever the duration.
 */
export async function runFor(
  durationMs: number,
  concurrency: number,
  task: (worker: number) => Promise<void>,
  maxRequests = 50_000_000,
): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(durationMs * 1e6));
  let failed = false;
  const worker = async (w: number) => {
    while (!failed && latencies.length < maxRequests && process.hrtime.bigint() < deadline) {
      const t0 = process.hrtime.bigint();
      try {
        await task(w);
      } catch (error) {
        failed = true;
        throw error;
      }
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, (_, w) => worker(w)));
  return { latencies, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

// ---------------------------------------------------------------------------------------------
// Deterministic pseudo-random numbers

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A deterministic integer in [lo, hi] for key k (the same k always gives the same number). */
export function hashedInt(k: number, lo: number, hi: number): number {
  return lo + Math.floor(prng(k * 2654435761)() * (hi - lo + 1));
}

// ---------------------------------------------------------------------------------------------
// Replicas as text (fast enough to make thousands of multi-megabyte bundles while loading)

export interface PatientEdit {
  /** Appended to every Patient identifier.value. */
  identifierSuffix: string;
  /** Appended to every Patient name[].family. */
  familySuffix?: string;
  /** Patient.birthDate moved by this many days (full dates only). */
  birthDateShiftDays?: number;
}

/** Add `days` to a FHIR date 'YYYY-MM-DD' (other precisions are returned unchanged). */
export function shiftDate(date: string, days: number): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return date;
  const t = Date.parse(`${date}T00:00:00Z`) + days * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}

/**
 * Makes replicas of one transaction bundle as JSON text, like replicate() but without cloning the
 * whole bundle: the bundle is serialised once with placeholders for its Patient resources; a
 * replica edits copies of the (small) Patient resources, splices them in, then gives every
 * urn:uuid fullUrl of the bundle — and every occurrence of it in references — a fresh uuid with one
 * regular-expression pass over the text.
 */
export class BundleReplicator {
  readonly entries: number;
  private readonly parts: string[];
  private readonly patients: Patient[];
  private readonly uuids: Set<string>;

  constructor(bundle: Bundle) {
    const copy = structuredClone(bundle);
    this.entries = copy.entry?.length ?? 0;
    this.patients = [];
    this.uuids = new Set();
    const markers: string[] = [];
    for (const e of copy.entry ?? []) {
      if (e.fullUrl && URN_UUID.test(e.fullUrl)) this.uuids.add(e.fullUrl);
      if (e.resource?.resourceType === 'Patient') {
        const marker = `@@carebridge-bench-patient-${this.patients.length}@@`;
        this.patients.push(e.resource as Patient);
        markers.push(marker);
        (e as { resource: unknown }).resource = marker;
      }
    }
    let text = JSON.stringify(copy);
    this.parts = [];
    for (const marker of markers) {
      const at = text.indexOf(`"${marker}"`);
      this.parts.push(text.slice(0, at));
      text = text.slice(at + marker.length + 2);
    }
    this.parts.push(text);
  }

  /** The JSON text of a replica with fresh urn:uuids and the Patient edits applied. */
  text(edit: PatientEdit): string {
    let out = this.parts[0]!;
    this.patients.forEach((p, i) => {
      const patient = structuredClone(p);
      for (const identifier of patient.identifier ?? []) {
        if (identifier.value !== undefined) identifier.value = `${identifier.value}${edit.identifierSuffix}`;
      }
      if (edit.familySuffix) for (const name of patient.name ?? []) if (name.family !== undefined) name.family = `${name.family}${edit.familySuffix}`;
      if (edit.birthDateShiftDays && patient.birthDate) patient.birthDate = shiftDate(patient.birthDate, edit.birthDateShiftDays);
      out += JSON.stringify(patient) + this.parts[i + 1]!;
    });
    const fresh = new Map<string, string>();
    return out.replace(/urn:uuid:[0-9a-fA-F-]{36}/g, (m) => {
      if (!this.uuids.has(m)) return m;
      let next = fresh.get(m);
      if (!next) fresh.set(m, (next = `urn:uuid:${randomUUID()}`));
      return next;
    });
  }
}

/** A numeric option that must be at least 1. */
export function positiveArg(args: Map<string, string | number | boolean>, name: string, fallback: number): number {
  const v = (args.get(name) as number | undefined) ?? fallback;
  if (v < 1) throw new Error(`--${name} must be at least 1`);
  return v;
}

/** The --pg-url option (default: the local server); benchmarks only ever target this machine. */
export function localPgUrl(args: Map<string, string | number | boolean>): string {
  const url = (args.get('pg-url') as string | undefined) ?? DEFAULT_ADMIN_URL;
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1' && host !== '[::1]') throw new Error(`--pg-url must point at this machine (got host '${host}')`);
  return url;
}
