/**
 * HL7 v2 inbound throughput: C MLLP connections stream N messages (ADT^A01 and ORU^R01, half each,
 * every one a different patient and order) to CareBridge (src/main.ts as a child process, fresh
 * PostgreSQL database or PGlite), W messages in flight per connection. Prints messages/s
 * acknowledged, the rows stored (hl7_message processed, checked after the run), p50/p95 ACK
 * latency, beside a raw PostgreSQL baseline measured in the same run: per message one
 * transaction inserting the message row and the same number of resource rows CareBridge wrote
 * (the mapped resources, as JSON), from C clients.
 *
 *   npx tsx scripts/bench/hl7v2.ts [--messages 4000] [--warmup 1000] [--connections 4] [--window 16] [--workers cores] [--engine postgres|pglite] [--keep-db] [--dist]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { loadMappingConfig } from '../../src/hl7v2/mapping-config.js';
import { Mapper } from '../../src/hl7v2/mapper.js';
import { parseMessage, readHeader } from '../../src/hl7v2/parser.js';
import { benchMessage } from './hl7v2-workload.js';
import { adminQuery, cpuBetween, createScratchDatabase, DEFAULT_ADMIN_URL, formatTable, freePort, listProcesses, machineBusySeconds, parseArgs, percentile, postgresProcesses, processTree, REPO_ROOT, startServerChild } from './lib.js';

const args = parseArgs(process.argv.slice(2), {
  messages: 'number',
  warmup: 'number',
  connections: 'number',
  window: 'number',
  workers: 'number',
  engine: 'string',
  'pg-url': 'string',
  'cpu-prof': 'string',
  'no-raw': 'boolean',
  echo: 'boolean',
  'keep-db': 'boolean',
  dist: 'boolean',
});
const N = (args.get('messages') as number | undefined) ?? 4000;
/** Messages sent before the clock starts: the server's JIT and the planner's statistics settle first (steady state). */
const WARMUP = (args.get('warmup') as number | undefined) ?? 1000;
const C = (args.get('connections') as number | undefined) ?? 4;
const W = (args.get('window') as number | undefined) ?? 16;
/** The server's default with DATABASE_URL, as `npm start` runs it: one worker per core. */
const WORKERS = (args.get('workers') as number | undefined) ?? availableParallelism();
const ENGINE = (args.get('engine') as string | undefined) ?? 'postgres';
const ADMIN = (args.get('pg-url') as string | undefined) ?? DEFAULT_ADMIN_URL;

// ---------------------------------------------------------------------------------------------
// Workload

const run = Date.now().toString(36);
const message = (i: number) => benchMessage(run, i);

// ---------------------------------------------------------------------------------------------
// MLLP client

class Conn {
  private buffer = '';
  private readonly waiting: Array<() => void> = [];
  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (;;) {
        const end = this.buffer.indexOf('\x1c\x0d');
        if (end < 0) break;
        const payload = this.buffer.slice(this.buffer.indexOf('\x0b') + 1, end);
        this.buffer = this.buffer.slice(end + 2);
        const msa = payload.split('\r').find((s) => s.startsWith('MSA|'))?.split('|');
        if (msa?.[1] !== 'AA') throw new Error(`not AA: ${payload.replace(/\r/g, '\n')}`);
        this.waiting.shift()!();
      }
    });
  }
  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new Conn(s)));
      s.once('error', reject);
    });
  }
  send(payload: string): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(`\x0b${payload}\x1c\x0d`, 'latin1');
    });
  }
  close(): void {
    this.socket.destroy();
  }
}

/** Stream the messages over C connections, W in flight on each; latencies in ms. */
async function stream(port: number, messages: string[]): Promise<{ latencies: number[]; seconds: number }> {
  const conns = await Promise.all(Array.from({ length: C }, () => Conn.open(port)));
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    conns.map(async (conn) => {
      const lane = async () => {
        while (next < messages.length) {
          const m = messages[next++]!;
          const t = performance.now();
          await conn.send(m);
          latencies.push(performance.now() - t);
        }
      };
      await Promise.all(Array.from({ length: W }, lane));
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  conns.forEach((c) => c.close());
  return { latencies, seconds };
}

/** `npm run build`, then the compiled server (what `npm start` and the Dockerfile run). */
function buildDist(): string {
  const r = spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed');
  return 'dist/main.js';
}

/** Resolves once the machine has been nearly idle (< 10% of a core) for a second, or after 60 s. */
async function untilIdle(): Promise<void> {
  const end = Date.now() + 60_000;
  let quiet = 0;
  let last = machineBusySeconds()!;
  while (quiet < 5 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    const now = machineBusySeconds()!;
    quiet = now - last < 0.02 ? quiet + 1 : 0;
    last = now;
  }
}

// ---------------------------------------------------------------------------------------------
// Raw PostgreSQL baseline: the same message rows and resource rows, one transaction per message.

async function baseline(messages: string[]): Promise<{ latencies: number[]; seconds: number }> {
  const mapper = new Mapper(loadMappingConfig());
  const rows = messages.map((raw) => {
    const msg = parseMessage(raw);
    const header = readHeader(msg);
    const plan = mapper.map(msg, header, mapper.structureFor(header)!);
    return { raw, controlId: header.controlId, type: `${header.messageCode}^${header.triggerEvent}`, resources: plan.entries.map((e) => [e.resource.resourceType, JSON.stringify(e.resource)]) };
  });
  const db = await createScratchDatabase(ADMIN, '_raw');
  try {
    await adminQuery(
      db.url,
      `CREATE TABLE hl7_message (id bigserial PRIMARY KEY, control_id text UNIQUE, message_type text, status text, raw text);
       CREATE TABLE resource (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), resource_type text, content jsonb)`,
    );
    const pool = new pg.Pool({ connectionString: db.url, max: C * W > 8 ? 8 : C * W });
    // pool.end() resolves before its sockets close; DROP DATABASE … FORCE then ends them with an error.
    pool.on('error', () => undefined);
    let next = 0;
    const latencies: number[] = [];
    const start = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(8, C * W) }, async () => {
        const client = await pool.connect();
        try {
          while (next < rows.length) {
            const r = rows[next++]!;
            const t = performance.now();
            await client.query('BEGIN');
            await client.query(`INSERT INTO hl7_message (control_id, message_type, status, raw) VALUES ($1, $2, 'processed', $3)`, [r.controlId, r.type, r.raw]);
            await client.query(`INSERT INTO resource (resource_type, content) SELECT * FROM unnest($1::text[], $2::jsonb[])`, [r.resources.map((x) => x[0]), r.resources.map((x) => x[1])]);
            await client.query('COMMIT');
            latencies.push(performance.now() - t);
          }
        } finally {
          client.release();
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    await pool.end();
    return { latencies, seconds };
  } finally {
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const warmup = Array.from({ length: WARMUP }, (_, i) => message(N + i));
  const messages = Array.from({ length: N }, (_, i) => message(i));
  const mllpPort = await freePort();
  let dataDir: string | undefined;
  const db = ENGINE === 'postgres' ? await createScratchDatabase(ADMIN) : undefined;
  if (!db) dataDir = mkdtempSync(join(tmpdir(), 'carebridge-bench-hl7-'));
  const profDir = args.get('cpu-prof') as string | undefined;
  const server = await startServerChild({
    env: { ...(db ? { DATABASE_URL: db.url, WORKERS: String(WORKERS) } : { DATABASE_URL: undefined, DATA_DIR: dataDir }), MLLP_PORT: String(mllpPort), LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', REDIS_URL: undefined },
    nodeFlags: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : undefined,
    script: args.get('dist') ? buildDist() : undefined,
    echo: args.get('echo') === true,
  });
  let cb: { latencies: number[]; seconds: number };
  let stored = Number.NaN;
  const cpu: { server?: number; postgres?: number; machine?: number; drained?: number } = {};
  try {
    await stream(mllpPort, warmup);
    await untilIdle(); // the warm-up's change consumers finish before the clock starts
    const before = listProcesses();
    const machineBefore = machineBusySeconds();
    cb = await stream(mllpPort, messages);
    const after = listProcesses();
    if (after.length) {
      cpu.server = cpuBetween(before, after, processTree(server.child.pid!, after));
      if (db) cpu.postgres = cpuBetween(before, after, postgresProcesses(db.name, after));
      cpu.machine = machineBusySeconds()! - machineBefore!;
      // Change consumers (order tasks, outbound feeds) finish after the last ACK: wait until the
      // machine is idle to count the whole cost of the messages.
      await untilIdle();
      cpu.drained = machineBusySeconds()! - machineBefore!;
    }
    if (db) {
      const [row] = await adminQuery<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM tenant_default.hl7_message WHERE status = 'processed' AND control_id LIKE $1`, [`B-${run}-%`]);
      stored = row!.n - warmup.length;
    }
  } finally {
    await server.stop();
    if (db && args.get('keep-db')) console.error(`kept database ${db.url}`);
    else await db?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
  const raw = args.get('no-raw') ? undefined : await baseline(messages);
  const fmt = (r: { latencies: number[]; seconds: number }) => [
    String(r.latencies.length),
    (r.latencies.length / r.seconds).toFixed(0),
    percentile(r.latencies, 50).toFixed(1),
    percentile(r.latencies, 95).toFixed(1),
  ];
  console.log(`HL7 v2 inbound: ${N} messages (ADT^A01 / ORU^R01 alternating), ${C} connections × ${W} in flight, engine ${ENGINE}${db ? `, WORKERS=${WORKERS}` : ''}`);
  console.log(
    formatTable(
      ['', 'messages', 'msg/s', 'p50 ms', 'p95 ms', 'stored'],
      [
        [`CareBridge (MLLP, ACK after commit)`, ...fmt(cb), db ? String(stored) : 'n/a'],
        ...(raw ? [[`raw PostgreSQL (1 tx/message, ${Math.min(8, C * W)} clients)`, ...fmt(raw), String(raw.latencies.length)]] : []),
      ],
    ),
  );
  const perMessage = (seconds: number | undefined) => (seconds === undefined ? 'n/a' : `${((seconds * 1000) / N).toFixed(2)} ms`);
  if (cpu.machine !== undefined) {
    // How busy the cores were: below ~95 % the load (connections × window), not the CPU, set the pace.
    const busy = (100 * cpu.machine) / (cb.seconds * availableParallelism());
    console.log(`CPU per message while CareBridge ran: server ${perMessage(cpu.server)}, PostgreSQL ${perMessage(cpu.postgres)}, whole machine ${perMessage(cpu.machine)} (its ${availableParallelism()} cores ${busy.toFixed(0)} % busy)`);
    console.log(`whole machine until background work (change consumers) finished: ${perMessage(cpu.drained)}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
