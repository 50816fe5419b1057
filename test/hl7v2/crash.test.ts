/**
 * Crash safety of the HL7 v2 inbound path: the server (src/main.ts in its own process) is killed
 * with SIGKILL while a client streams 1,000 ADT^A01 messages pipelined over one MLLP connection.
 * After a restart on the same store, every message that was ACKed must be stored exactly once
 * (one hl7_message row, one Patient), and sending all 1,000 again must give AA for each, still
 * with exactly one Patient per identifier (MSH-10 idempotency for the stored ones, conditional
 * update on PID-3 for the others).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, ENGINES } from '../support/server.js';
import { fixture, MllpClient, setField, withControlId, type Ack } from './mllp-client.js';

const ROOT = join(import.meta.dirname, '../..');
const TOTAL = 1000;
const KILL_AFTER = 300;
const MRN = 'http://goodhealth.example.org/fhir/sid/mrn';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Child {
  child: ChildProcess;
  origin: string;
  mllpPort: number;
  exited: Promise<unknown>;
}

async function startServer(env: Record<string, string>): Promise<Child> {
  const [port, mllpPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', MLLP_PORT: String(mllpPort), AUTH_MODE: 'open', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const origin = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(`${origin}/readyz`)).ok) {
        const probe = await MllpClient.connect(mllpPort);
        await probe.close();
        return { child, origin, mllpPort, exited };
      }
    } catch {
      /* not listening yet */
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`server did not become ready:\n${output}`);
}

/** ADT^A01 number i: its own MSH-10, MRN (PID-3) and visit number (PV1-19). */
function a01(i: number): string {
  let m = withControlId(fixture('msfc_ADT01-28.hl7'), `CRASH-${i}`);
  m = setField(m, 'PID', 3, `CRASH-MRN-${i}^^^ADT1^MR`);
  return setField(m, 'PV1', 19, `CRASH-V-${i}^^^ADT1^VN`);
}

/** Send all messages pipelined on one connection; resolve with the ACKs received before `stopAfter` (or all). */
async function stream(port: number, messages: string[], onAck?: (ack: Ack, n: number) => void): Promise<Ack[]> {
  const client = await MllpClient.connect(port);
  const acks: Ack[] = [];
  client.socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => client.socket.once('close', () => resolve()));
  for (const m of messages) client.send(m);
  try {
    while (acks.length < messages.length) {
      const ack = await Promise.race([client.next(60_000), closed.then(() => undefined)]);
      if (!ack) break;
      acks.push(ack);
      onAck?.(ack, acks.length);
    }
  } finally {
    client.socket.destroy();
  }
  return acks;
}

async function patientsWith(origin: string, i: number): Promise<number> {
  const r = await fetch(`${origin}/fhir/Patient?identifier=${encodeURIComponent(`${MRN}|CRASH-MRN-${i}`)}&_summary=count`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { total: number }).total;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe.each(ENGINES)('HL7 v2 crash safety on %s', (engine) => {
  it(`SIGKILL while ${TOTAL} ADT^A01 stream in: after restart each ACKed message is stored exactly once`, { timeout: 180_000 }, async () => {
    let env: Record<string, string>;
    let query: (sql: string) => Promise<Array<Record<string, unknown>>>;
    if (engine === 'pglite') {
      const dir = mkdtempSync(join(tmpdir(), 'carebridge-crash-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      env = { DATA_DIR: dir, DATABASE_URL: '' };
      // Read with the server stopped (one process at a time opens a PGlite directory).
      query = async (sql) => {
        const db = new PGlite(join(dir, 'pgdata'));
        try {
          return (await db.query<Record<string, unknown>>(sql)).rows;
        } finally {
          await db.close();
        }
      };
    } else {
      const db = await createTestDatabase();
      cleanups.push(() => db.drop());
      env = { DATABASE_URL: db.url, WORKERS: '1' };
      query = async (sql) => {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        try {
          return (await c.query(sql)).rows;
        } finally {
          await c.end();
        }
      };
    }
    const messages = Array.from({ length: TOTAL }, (_, i) => a01(i));

    // 1. Stream, kill -9 after KILL_AFTER ACKs.
    let server = await startServer(env);
    const acked = new Set<string>();
    const first = await stream(server.mllpPort, messages, (ack, n) => {
      if (ack.msa[1] === 'AA') acked.add(ack.msa[2]!);
      if (n === KILL_AFTER) server.child.kill('SIGKILL');
    });
    await server.exited;
    expect(first.length).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(first.length).toBeLessThan(TOTAL);
    expect(first.every((a) => a.msa[1] === 'AA')).toBe(true);

    // 2. Restart on the same store: every ACKed message has one Patient.
    server = await startServer(env);
    for (const id of acked) expect(await patientsWith(server.origin, Number(id.slice('CRASH-'.length))), id).toBe(1);

    // 3. All 1,000 again: AA for each, still one Patient per MRN.
    const again = await stream(server.mllpPort, messages);
    expect(again.map((a) => a.msa[2])).toEqual(messages.map((_, i) => `CRASH-${i}`));
    expect(again.filter((a) => a.msa[1] !== 'AA')).toEqual([]);
    const bundle = (await (await fetch(`${server.origin}/fhir/Patient?_summary=count`)).json()) as { total: number };
    expect(bundle.total).toBe(TOTAL);
    for (const i of [0, KILL_AFTER - 1, KILL_AFTER, KILL_AFTER + 1, TOTAL - 1]) expect(await patientsWith(server.origin, i)).toBe(1);
    server.child.kill('SIGTERM');
    await server.exited;

    // 4. One hl7_message row per control id (the ACKed ones included), all processed.
    const rows = await query(
      `SELECT control_id, count(*)::int AS n, min(status) AS status FROM tenant_default.hl7_message WHERE direction = 'in' AND control_id LIKE 'CRASH-%' GROUP BY control_id`,
    );
    expect(rows).toHaveLength(TOTAL);
    expect(rows.filter((r) => r.n !== 1 || r.status !== 'processed')).toEqual([]);
    const stored = new Set(rows.map((r) => r.control_id as string));
    expect([...acked].filter((id) => !stored.has(id))).toEqual([]);
  });
});
