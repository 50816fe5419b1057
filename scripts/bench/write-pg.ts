/**
 * PostgreSQL's CPU for CareBridge's write statement alone (ResourceStore.insertNew), per HL7 v2
 * message of the benchmark workload: the mapped resources of N messages are prepared in-process
 * (index rows included), then written in transactions of --batch messages over one connection,
 * and the CPU time of that connection's backend (/proc, Linux) is read before and after. Variants
 * (database options) run alternately, each round on a fresh database.
 *
 *   npx tsx scripts/bench/write-pg.ts [--messages 2000] [--batch 11] [--rounds 3]
 *     [--variants "name=SPEC;;name2=SPEC..."]   (default: one variant, "base=")
 *
 * A variant's SPEC is CREATE DATABASE options ("TEMPLATE template0 LC_COLLATE 'C'"), or '+' and SQL
 * run after the migrations (schema tenant_default: "+DROP INDEX tenant_default.sp_token_rid_idx"),
 * or "no-index-rows" (the versions without their index rows: what the rows cost in all).
 */
import { readFileSync } from 'node:fs';
import { openDatabase } from '../../src/store/engines.js';
import { ResourceStore, type NewVersion } from '../../src/store/resource-store.js';
import { extractIndexRows } from '../../src/search/extract.js';
import '../../src/search/ucum.js';
import { hl7MessageResources } from './hl7v2-workload.js';
import { adminQuery, createScratchDatabase, parseArgs } from './lib.js';

const args = parseArgs(process.argv.slice(2), { messages: 'number', batch: 'number', rounds: 'number', 'pg-url': 'string', variants: 'string' });
const MESSAGES = (args.get('messages') as number | undefined) ?? 2000;
const BATCH = (args.get('batch') as number | undefined) ?? 11;
const ROUNDS = (args.get('rounds') as number | undefined) ?? 3;
const ADMIN = (args.get('pg-url') as string | undefined) ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const variants = ((args.get('variants') as string | undefined) ?? 'base=').split(';;').map((v) => {
  const [name, ...rest] = v.split('=');
  return { name: name!, options: rest.join('=') };
});

const ticks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, clock ticks (100/s)
};

const messages = hl7MessageResources(MESSAGES, new Date().toISOString());
const versions: NewVersion[][] = messages.map((rs) =>
  rs.map((r) => ({ resourceType: r.resourceType, id: r.id!, versionId: 1, lastUpdated: r.meta!.lastUpdated!, deleted: false, content: JSON.stringify(r), indexRows: extractIndexRows(r) })),
);
const rows = versions.flat().reduce((n, v) => n + v.indexRows.length, 0);
console.log(`${MESSAGES} messages, ${versions.flat().length} resources, ${rows} index rows; batches of ${BATCH} messages`);

const results = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const variant of variants) {
    const sql = variant.options.startsWith('+') ? variant.options.slice(1) : undefined;
    const noRows = variant.options === 'no-index-rows';
    const scratch = await createScratchDatabase(ADMIN, '', sql !== undefined || noRows ? '' : variant.options);
    const db = await openDatabase({ databaseUrl: scratch.url, poolSize: 1 });
    try {
      const store = new ResourceStore(db, 'tenant_default');
      await store.migrate();
      if (sql) await db.exec(sql);
      const pid = Number((await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      await adminQuery(ADMIN, 'CHECKPOINT');
      const t0 = ticks(pid);
      const w0 = performance.now();
      for (let i = 0; i < versions.length; i += BATCH) {
        let batch = versions.slice(i, i + BATCH).flat();
        if (noRows) batch = batch.map((v) => ({ ...v, indexRows: [] }));
        await db.transaction((tx) => store.insertNew(tx, batch));
      }
      const ms = ((ticks(pid) - t0) * 10) / MESSAGES;
      const wall = (performance.now() - w0) / MESSAGES;
      (results.get(variant.name) ?? results.set(variant.name, []).get(variant.name)!).push(ms);
      console.log(`round ${round + 1} ${variant.name.padEnd(12)} backend CPU ${(ms * 1000).toFixed(0)} µs/msg, wall ${(wall * 1000).toFixed(0)} µs/msg`);
    } finally {
      await db.close();
      await scratch.drop();
    }
  }
}
for (const [name, xs] of results) {
  const s = [...xs].sort((a, b) => a - b);
  console.log(`${name.padEnd(12)} median ${(s[s.length >> 1]! * 1000).toFixed(0)} µs/msg  (${s.map((x) => (x * 1000).toFixed(0)).join(' ')})`);
}
