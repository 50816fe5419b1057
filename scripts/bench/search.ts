/**
 * Search benchmark: a CareBridge server (child process) on a PostgreSQL database loaded with
 * replicated Synthea patients, queried over HTTP with a mix of typical FHIR searches, each beside
 * the same-run baselines: a hand-written SQL query over the same tables through a pg Pool, and a
 * bare express app returning a body of the mean response size (the HTTP floor). EXPLAIN (ANALYZE,
 * BUFFERS) of the statement CareBridge generates for each search. See scripts/bench/README.md.
 *
 *   npx tsx scripts/bench/search.ts [--corpus DIR] [--resources N] [--keep-db NAME | --reuse-db NAME]
 *                                   [--duration S] [--concurrency C] [--workers W] [--load-concurrency L]
 *                                   [--only a,b,...] [--plans] [--pg-url URL] [--cpu-prof DIR] [--echo-server]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import pg from 'pg';
import type { Bundle, BundleEntry, OperationOutcome, Patient } from 'fhir/r4.js';
import {
  adminQuery,
  BundleReplicator,
  cpuBetween,
  defaultCorpusDir,
  formatTable,
  hashedInt,
  listProcesses,
  loadCorpus,
  localPgUrl,
  machineBusySeconds,
  onInterrupt,
  parseArgs,
  percentile,
  positiveArg,
  postgresProcesses,
  prng,
  processTree,
  type ProcInfo,
  REPO_ROOT,
  runConcurrent,
  runFor,
  type ServerChild,
  startServerChild,
  withDatabase,
} from './lib.js';
import { carebridgeSearchSql, type GeneratedSql } from './search-sql.js';

const SCHEMA = 'tenant_default';
const S = `"${SCHEMA}"`;
/** CareBridge's default _count; the raw SQL returns the same first page. */
const PAGE = 20;
/** Parameter sets drawn per query. */
const POOL = 1000;
/** Requests per query checked for identical results (CareBridge vs raw SQL) before timing. */
const CHECKS = 20;
const DB_NAME = /^carebridge_bench_[a-z0-9_]+$/;

interface Options {
  corpus: string;
  resources: number;
  keepDb?: string;
  reuseDb?: string;
  durationS: number;
  concurrency: number;
  workers: number;
  loadConcurrency: number;
  adminUrl: string;
  only?: Set<string>;
  plans: boolean;
  echoServer: boolean;
  cpuProfDir?: string;
}

function options(): Options {
  const args = parseArgs(process.argv.slice(2), {
    corpus: 'string',
    resources: 'number',
    'keep-db': 'string',
    'reuse-db': 'string',
    duration: 'number',
    concurrency: 'number',
    workers: 'number',
    'load-concurrency': 'number',
    'pg-url': 'string',
    only: 'string',
    plans: 'boolean',
    'echo-server': 'boolean',
    'cpu-prof': 'string',
    help: 'boolean',
  });
  if (args.get('help')) {
    console.log(
      'usage: npx tsx scripts/bench/search.ts [--corpus DIR] [--resources N] [--keep-db NAME | --reuse-db NAME] [--duration S] ' +
        '[--concurrency C] [--workers W] [--load-concurrency L] [--only a,b,...] [--plans] [--pg-url URL] [--cpu-prof DIR] [--echo-server]',
    );
    process.exit(0);
  }
  const positive = (name: string, fallback: number) => positiveArg(args, name, fallback);
  const adminUrl = localPgUrl(args);
  const keepDb = args.get('keep-db') as string | undefined;
  const reuseDb = args.get('reuse-db') as string | undefined;
  if (keepDb && reuseDb) throw new Error('--keep-db and --reuse-db exclude each other');
  for (const name of [keepDb, reuseDb]) if (name !== undefined && !DB_NAME.test(name)) throw new Error(`database name must match ${DB_NAME} (got '${name}')`);
  const only = args.get('only') as string | undefined;
  return {
    corpus: resolve((args.get('corpus') as string | undefined) ?? defaultCorpusDir()),
    resources: positive('resources', 1_000_000),
    keepDb,
    reuseDb,
    durationS: positive('duration', 20),
    concurrency: positive('concurrency', 2),
    workers: positive('workers', availableParallelism()),
    loadConcurrency: positive('load-concurrency', 2),
    adminUrl,
    only: only ? new Set(only.split(',').map((s) => s.trim()).filter(Boolean)) : undefined,
    plans: Boolean(args.get('plans')),
    echoServer: Boolean(args.get('echo-server')),
    cpuProfDir: args.get('cpu-prof') ? resolve(args.get('cpu-prof') as string) : undefined,
  };
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const thousands = (n: number) => n.toLocaleString('en-US');

// ---------------------------------------------------------------------------------------------
// Database: scratch (dropped at the end), kept (--keep-db) or reused (--reuse-db)

interface Db {
  name: string;
  url: string;
  /** Loaded by this run (false with --reuse-db). */
  fresh: boolean;
  /** The load is complete: from now on a --keep-db database is kept whatever happens. */
  loaded(): void;
  /** Called at the end: drops the database unless it is reused, or kept and loaded. */
  finish(): Promise<void>;
}

async function openDb(o: Options): Promise<Db> {
  const exists = async (name: string) => (await adminQuery(o.adminUrl, 'SELECT 1 FROM pg_database WHERE datname = $1', [name])).length > 0;
  if (o.reuseDb) {
    if (!(await exists(o.reuseDb))) throw new Error(`--reuse-db ${o.reuseDb}: no such database (load it once with --keep-db ${o.reuseDb})`);
    return { name: o.reuseDb, url: withDatabase(o.adminUrl, o.reuseDb), fresh: false, loaded: () => undefined, finish: async () => undefined };
  }
  const name = o.keepDb ?? `carebridge_bench_${Math.random().toString(36).slice(2, 12).replace(/[^a-z0-9]/g, '')}_search`;
  if (!DB_NAME.test(name)) throw new Error(`bad database name ${name}`);
  if (await exists(name)) throw new Error(`database ${name} exists already: use --reuse-db ${name}, or drop it first (DROP DATABASE ${name} WITH (FORCE))`);
  await adminQuery(o.adminUrl, `CREATE DATABASE ${name}`);
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    await adminQuery(o.adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  // Dropped on Ctrl-C and after a failed load even when it was to be kept (it would be incomplete).
  const forget = onInterrupt(drop);
  let keep = false;
  return {
    name,
    url: withDatabase(o.adminUrl, name),
    fresh: true,
    loaded: () => {
      if (!o.keepDb) return;
      keep = true;
      forget();
    },
    finish: async () => {
      forget();
      if (!keep) await drop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Load

async function postTransaction(base: string, text: string, entries: number, what: string): Promise<void> {
  const res = await fetch(`${base}/fhir`, { method: 'POST', headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' }, body: text });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${what}: HTTP ${res.status}:\n${body.slice(0, 3000)}`);
  const parsed = JSON.parse(body) as Bundle;
  const got = parsed.entry ?? [];
  if (parsed.type !== 'transaction-response' || got.length !== entries) throw new Error(`${what}: expected a transaction-response with ${entries} entries, got ${parsed.type} with ${got.length}`);
  const bad = got.findIndex((e: BundleEntry) => e.response?.status !== '201 Created');
  if (bad >= 0) throw new Error(`${what}: entry ${bad} has status '${got[bad]!.response?.status}':\n${JSON.stringify(got[bad]).slice(0, 2000)}`);
}

interface LoadResult {
  bundles: number;
  resources: number;
  seconds: number;
  latencies: number[];
  bytes: number;
}

/**
 * hospitalInformation* / practitionerInformation* bundles as they are (if present), then replica k
 * of patient file k % files for k = 0, 1, ... until `target` resources: fresh urn:uuids, identifier
 * values + '-k', family names + k (6 digits, so no family is a prefix of another), birth dates moved
 * by a pseudo-random number of days in ±5 years (a function of k).
 */
async function load(o: Options, server: ServerChild): Promise<LoadResult> {
  const shared = readdirSync(o.corpus)
    .filter((f) => f.endsWith('.json') && /^(hospital|practitioner)Information/.test(f))
    .sort((a, b) => (a.startsWith('hospital') === b.startsWith('hospital') ? a.localeCompare(b) : a.startsWith('hospital') ? -1 : 1));
  const corpus = loadCorpus(o.corpus);
  const replicators = corpus.map((f) => new BundleReplicator(f.bundle));
  let resources = 0;
  let bytes = 0;
  const latencies: number[] = [];
  const t0 = process.hrtime.bigint();
  for (const name of shared) {
    const text = readFileSync(join(o.corpus, name), 'utf8');
    const entries = (JSON.parse(text) as Bundle).entry?.length ?? 0;
    const s = process.hrtime.bigint();
    await postTransaction(server.base, text, entries, name);
    latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
    resources += entries;
    bytes += Buffer.byteLength(text);
  }
  const plan: number[] = [];
  for (let k = 0, total = resources; total < o.resources; k++) {
    plan.push(k);
    total += replicators[k % replicators.length]!.entries;
  }
  let done = resources;
  let lastReport = Date.now();
  const { latencies: lat } = await runConcurrent(plan.length, o.loadConcurrency, async (i) => {
    const k = plan[i]!;
    const rep = replicators[k % replicators.length]!;
    const text = rep.text({ identifierSuffix: `-${k}`, familySuffix: String(k).padStart(6, '0'), birthDateShiftDays: hashedInt(k, -1825, 1825) });
    bytes += Buffer.byteLength(text);
    await postTransaction(server.base, text, rep.entries, `bundle ${k} (${corpus[k % corpus.length]!.name})`).catch((error: Error) => {
      throw new Error(`${error.message}\n--- server output ---\n${server.tail()}`);
    });
    done += rep.entries;
    if (Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(`  loaded ${thousands(done)} / ${thousands(o.resources)} resources in ${secs.toFixed(0)} s (${(done / secs).toFixed(0)} resources/s)`);
    }
  });
  latencies.push(...lat);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { bundles: shared.length + plan.length, resources: done, seconds, latencies, bytes };
}

// ---------------------------------------------------------------------------------------------
// Parameters drawn from the loaded data

interface PatientSample {
  id: string;
  identifier?: { system: string; value: string };
  family?: string;
  birthDate?: string;
}

interface Samples {
  patients: PatientSample[];
  /** (patient, LOINC code) with an Observation dated in [2015, 2020). */
  observations: Array<{ patient: string; system: string; code: string }>;
  /** Patients with an active MedicationRequest. */
  activeMedPatients: string[];
  medStatus: string;
  counts: Map<string, number>;
  medicationReferences: number;
}

function shuffle<T>(xs: T[], seed: number): T[] {
  const rnd = prng(seed);
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

async function sample(url: string): Promise<Samples> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SELECT setseed(0.42)');
    const countRows = await client.query<{ resource_type: string; n: string }>(`SELECT resource_type, count(*) AS n FROM ${S}.resource WHERE NOT deleted GROUP BY 1 ORDER BY 2 DESC`);
    const counts = new Map(countRows.rows.map((r) => [r.resource_type, Number(r.n)]));
    const rnd = prng(7);
    const patientRows = await client.query<{ id: string; content: string }>(
      `SELECT id, content FROM ${S}.resource WHERE resource_type = 'Patient' AND NOT deleted ORDER BY random() LIMIT ${POOL}`,
    );
    const patients = patientRows.rows.map((r): PatientSample => {
      const p = JSON.parse(r.content) as Patient;
      const ids = (p.identifier ?? []).filter((i) => i.system && i.value);
      const identifier = ids.length ? ids[Math.floor(rnd() * ids.length)]! : undefined;
      const family = p.name?.find((n) => n.use === 'official' && n.family)?.family ?? p.name?.find((n) => n.family)?.family;
      return { id: r.id, identifier: identifier ? { system: identifier.system!, value: identifier.value! } : undefined, family, birthDate: p.birthDate };
    });
    const obs = await client.query<{ patient: string; system: string; code: string }>(
      `SELECT ref.target_id AS patient, t.system, t.code
       FROM ${S}.sp_reference ref
       JOIN ${S}.sp_token t ON t.rid = ref.rid AND t.resource_type = 'Observation' AND t.param = 'code' AND t.system = 'http://loinc.org'
       JOIN ${S}.sp_date d ON d.rid = ref.rid AND d.resource_type = 'Observation' AND d.param = 'date'
       WHERE ref.resource_type = 'Observation' AND ref.param = 'subject' AND ref.target_type = 'Patient' AND ref.target_id = ANY($1::text[])
         AND d.hi >= '2015-01-01T00:00:00Z' AND d.lo < '2020-01-01T00:00:00Z'
       GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      [patients.slice(0, 300).map((p) => p.id)],
    );
    // Spread over patients: shuffle, then at most 4 codes per patient.
    const perPatient = new Map<string, number>();
    const observations = shuffle(obs.rows, 11).filter((r) => {
      const n = perPatient.get(r.patient) ?? 0;
      perPatient.set(r.patient, n + 1);
      return n < 4;
    }).slice(0, POOL);
    const statuses = await client.query<{ code: string; n: string }>(
      `SELECT code, count(*) AS n FROM ${S}.sp_token WHERE resource_type = 'MedicationRequest' AND param = 'status' GROUP BY 1 ORDER BY 2 DESC`,
    );
    const medStatus = statuses.rows.some((r) => r.code === 'active') ? 'active' : (statuses.rows[0]?.code ?? 'active');
    const med = await client.query<{ id: string }>(
      `SELECT id FROM (SELECT DISTINCT ref.target_id AS id
         FROM ${S}.sp_token t
         JOIN ${S}.sp_reference ref ON ref.rid = t.rid AND ref.resource_type = 'MedicationRequest' AND ref.param = 'subject' AND ref.target_type = 'Patient'
         WHERE t.resource_type = 'MedicationRequest' AND t.param = 'status' AND t.code = $1) x
       ORDER BY random() LIMIT ${POOL}`,
      [medStatus],
    );
    const medRefs = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${S}.sp_reference WHERE resource_type = 'MedicationRequest' AND param = 'medication'`);
    return { patients, observations, activeMedPatients: med.rows.map((r) => r.id), medStatus, counts, medicationReferences: Number(medRefs.rows[0]!.n) };
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// The query mix

interface RawSql {
  text: string;
  values: unknown[];
}

interface QueryDef {
  key: string;
  label: string;
  resourceType: string;
  size: number;
  params(i: number): Array<[string, string]>;
  raw(i: number): RawSql;
  note?: string;
}

/** Lower case without accents (values.ts normalizeString), for the raw SQL's sp_string.norm match. */
const norm = (s: string) => s.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/\s+/g, ' ').trim();
const likePrefix = (s: string) => `${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

const RAW_COLS = 'r.id, r.resource_type, r.content';
const PAGE_ORDER = `ORDER BY r.last_updated, r.rid LIMIT ${PAGE}`;

/** Matches of a search page plus the resources one include / revinclude adds, as one statement. */
function rawIncludeSql(matches: string, param: string, reverse: boolean): string {
  const joined = reverse
    ? `FROM ${S}.sp_reference i JOIN ${S}.resource x ON x.rid = i.rid
       WHERE (i.target_type, i.target_id) IN (SELECT resource_type, id FROM m) AND i.resource_type = $RT AND i.param = '${param}' AND NOT x.deleted`
    : `FROM ${S}.sp_reference i JOIN ${S}.resource x ON x.resource_type = i.target_type AND x.id = i.target_id
       WHERE i.rid IN (SELECT rid FROM m) AND i.param = '${param}' AND i.resource_type = $RT AND NOT x.deleted`;
  return `WITH m AS (${matches})
SELECT id, resource_type, content FROM m
UNION ALL
(SELECT DISTINCT ON (x.rid) x.id, x.resource_type, x.content ${joined} LIMIT 1000)`;
}

function defineQueries(s: Samples): QueryDef[] {
  const withIdentifier = s.patients.filter((p) => p.identifier);
  const withNameDate = s.patients.filter((p) => p.family && p.birthDate && /^\d{4}-\d{2}-\d{2}$/.test(p.birthDate));
  const pick = <T>(xs: T[], i: number) => xs[i % xs.length]!;
  const medPatients = s.activeMedPatients.length ? s.activeMedPatients : s.patients.map((p) => p.id);
  const provenance = s.counts.get('Provenance') ?? 0;
  const medInclude = (param: string, key: string, label: string, note?: string): QueryDef => ({
    key,
    label,
    resourceType: 'MedicationRequest',
    size: medPatients.length,
    params: (i) => [['subject', `Patient/${pick(medPatients, i)}`], ['status', s.medStatus], ['_include', `MedicationRequest:${param}`]],
    raw: (i) => ({
      text: rawIncludeSql(
        `SELECT r.rid, ${RAW_COLS} FROM ${S}.resource r
         WHERE r.rid IN (SELECT ref.rid FROM ${S}.sp_reference ref
                         JOIN ${S}.sp_token t ON t.rid = ref.rid AND t.resource_type = 'MedicationRequest' AND t.param = 'status' AND t.code = $2
                         WHERE ref.resource_type = 'MedicationRequest' AND ref.param = 'subject' AND ref.target_type = 'Patient' AND ref.target_id = $1)
           AND NOT r.deleted ${PAGE_ORDER}`,
        param,
        false,
      ).replace(/\$RT/g, "'MedicationRequest'"),
      values: [pick(medPatients, i), s.medStatus],
    }),
    note,
  });
  const revinclude = (source: string, param: string, key: string, label: string, note?: string): QueryDef => ({
    key,
    label,
    resourceType: 'Patient',
    size: s.patients.length,
    params: (i) => [['_id', pick(s.patients, i).id], ['_revinclude', `${source}:${param}`]],
    raw: (i) => ({
      text: rawIncludeSql(`SELECT r.rid, ${RAW_COLS} FROM ${S}.resource r WHERE r.resource_type = 'Patient' AND r.id = $1 AND NOT r.deleted`, param, true).replace(
        /\$RT/g,
        `'${source}'`,
      ),
      values: [pick(s.patients, i).id],
    }),
    note,
  });
  return [
    {
      key: 'a',
      label: 'Patient?identifier=sys|val',
      resourceType: 'Patient',
      size: withIdentifier.length,
      params: (i) => [['identifier', `${pick(withIdentifier, i).identifier!.system}|${pick(withIdentifier, i).identifier!.value}`]],
      raw: (i) => ({
        text: `SELECT ${RAW_COLS} FROM ${S}.resource r
               WHERE r.rid IN (SELECT t.rid FROM ${S}.sp_token t WHERE t.resource_type = 'Patient' AND t.param = 'identifier' AND t.system = $1 AND t.code = $2)
                 AND NOT r.deleted ${PAGE_ORDER}`,
        values: [pick(withIdentifier, i).identifier!.system, pick(withIdentifier, i).identifier!.value],
      }),
    },
    {
      key: 'b',
      label: 'Patient?family&birthdate',
      resourceType: 'Patient',
      size: withNameDate.length,
      params: (i) => [['family', pick(withNameDate, i).family!], ['birthdate', pick(withNameDate, i).birthDate!]],
      raw: (i) => {
        const p = pick(withNameDate, i);
        return {
          text: `SELECT ${RAW_COLS} FROM ${S}.resource r
                 WHERE r.rid IN (SELECT n.rid FROM ${S}.sp_string n WHERE n.resource_type = 'Patient' AND n.param = 'family' AND n.norm LIKE $1)
                   AND r.rid IN (SELECT d.rid FROM ${S}.sp_date d WHERE d.resource_type = 'Patient' AND d.param = 'birthdate' AND d.lo >= $2 AND d.hi <= $3)
                   AND NOT r.deleted ${PAGE_ORDER}`,
          values: [likePrefix(norm(p.family!)), `${p.birthDate}T00:00:00.000Z`, `${p.birthDate}T23:59:59.999Z`],
        };
      },
    },
    {
      key: 'c',
      label: 'Observation?subject&code&date range',
      resourceType: 'Observation',
      size: s.observations.length,
      params: (i) => {
        const o = pick(s.observations, i);
        return [['subject', `Patient/${o.patient}`], ['code', `${o.system}|${o.code}`], ['date', 'ge2015-01-01'], ['date', 'lt2020-01-01']];
      },
      raw: (i) => {
        const o = pick(s.observations, i);
        return {
          text: `SELECT ${RAW_COLS} FROM ${S}.resource r
                 WHERE r.rid IN (SELECT ref.rid FROM ${S}.sp_reference ref
                   JOIN ${S}.sp_token t ON t.rid = ref.rid AND t.resource_type = 'Observation' AND t.param = 'code' AND t.system = $2 AND t.code = $3
                   JOIN ${S}.sp_date d ON d.rid = ref.rid AND d.resource_type = 'Observation' AND d.param = 'date' AND d.hi >= $4 AND d.lo < $5
                   WHERE ref.resource_type = 'Observation' AND ref.param = 'subject' AND ref.target_type = 'Patient' AND ref.target_id = $1)
                   AND NOT r.deleted ${PAGE_ORDER}`,
          values: [o.patient, o.system, o.code, '2015-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z'],
        };
      },
    },
    {
      key: 'd',
      label: 'Encounter?subject&_sort=-date',
      resourceType: 'Encounter',
      size: s.patients.length,
      params: (i) => [['subject', `Patient/${pick(s.patients, i).id}`], ['_sort', '-date']],
      raw: (i) => ({
        text: `SELECT ${RAW_COLS} FROM ${S}.sp_reference ref
               JOIN ${S}.resource r ON r.rid = ref.rid
               LEFT JOIN LATERAL (SELECT max(d.hi) AS k FROM ${S}.sp_date d WHERE d.rid = r.rid AND d.resource_type = 'Encounter' AND d.param = 'date') o ON true
               WHERE ref.resource_type = 'Encounter' AND ref.param = 'subject' AND ref.target_type = 'Patient' AND ref.target_id = $1 AND NOT r.deleted
               ORDER BY o.k DESC NULLS LAST, r.rid LIMIT ${PAGE}`,
        values: [pick(s.patients, i).id],
      }),
    },
    medInclude(
      'medication',
      'e',
      `MedicationRequest?subject&status=${s.medStatus}&_include=:medication`,
      s.medicationReferences === 0 ? 'no MedicationRequest.medicationReference in the data (Synthea uses medicationCodeableConcept): includes nothing; see e2' : undefined,
    ),
    medInclude('requester', 'e2', `MedicationRequest?subject&status=${s.medStatus}&_include=:requester`, 'extra row: an include that finds resources in Synthea data (Practitioner)'),
    {
      key: 'f',
      label: 'Observation?subject:Patient.identifier',
      resourceType: 'Observation',
      size: withIdentifier.length,
      params: (i) => [['subject:Patient.identifier', `${pick(withIdentifier, i).identifier!.system}|${pick(withIdentifier, i).identifier!.value}`]],
      raw: (i) => ({
        text: `SELECT ${RAW_COLS} FROM ${S}.resource r
               WHERE r.rid IN (SELECT ref.rid FROM ${S}.sp_token t
                 JOIN ${S}.resource p ON p.rid = t.rid AND NOT p.deleted
                 JOIN ${S}.sp_reference ref ON ref.target_type = 'Patient' AND ref.target_id = p.id AND ref.resource_type = 'Observation' AND ref.param = 'subject'
                 WHERE t.resource_type = 'Patient' AND t.param = 'identifier' AND t.system = $1 AND t.code = $2)
                 AND NOT r.deleted ${PAGE_ORDER}`,
        values: [pick(withIdentifier, i).identifier!.system, pick(withIdentifier, i).identifier!.value],
      }),
    },
    revinclude('Provenance', 'target', 'g', 'Patient?_id&_revinclude=Provenance:target', provenance === 0 ? 'no Provenance resources in the data: revincludes nothing; see g2' : undefined),
    revinclude('Encounter', 'subject', 'g2', 'Patient?_id&_revinclude=Encounter:subject', 'extra row: a revinclude that finds resources (the patient\'s Encounters, all of them)'),
  ];
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Stats {
  label: string;
  latencies: number[];
  seconds: number;
  /** Resources (matches + includes) / rows over the successful requests, and response bytes over all. */
  resultTotal: number;
  bytesTotal: number;
  errors: number;
  /** status → count, and the first diagnostics seen. */
  errorKinds: Map<string, number>;
  firstError?: string;
  firstWarning?: string;
  /** CPU share (0..1 of the whole machine) used by processes other than server, PostgreSQL and this one. */
  otherCpu?: number;
  /** CPU milliseconds per request by group (server process tree, PostgreSQL, this benchmark process). */
  cpuMsPerRequest: { server?: number; postgres?: number; client: number };
}

/** Processes whose CPU time is accounted, picked from the snapshot taken after the measurement. */
interface CpuGroups {
  server?: (procs: ProcInfo[]) => Set<number>;
  postgres?: (procs: ProcInfo[]) => Set<number>;
}

const cores = availableParallelism();

async function measure(
  label: string,
  durationMs: number,
  concurrency: number,
  groups: CpuGroups,
  request: (worker: number, stats: Stats) => Promise<void>,
): Promise<Stats> {
  const stats: Stats = { label, latencies: [], seconds: 0, resultTotal: 0, bytesTotal: 0, errors: 0, errorKinds: new Map(), cpuMsPerRequest: { client: 0 } };
  // Warm-up, not counted.
  const warm: Stats = { ...stats, errorKinds: new Map(), cpuMsPerRequest: { client: 0 } };
  await runFor(Math.min(2_000, durationMs / 10), concurrency, (w) => request(w, warm));
  const before = listProcesses();
  const busyBefore = machineBusySeconds();
  const clientBefore = process.cpuUsage();
  const { latencies, seconds } = await runFor(durationMs, concurrency, (w) => request(w, stats));
  const client = process.cpuUsage(clientBefore);
  const busyAfter = machineBusySeconds();
  const after = listProcesses();
  const n = Math.max(1, latencies.length);
  const clientCpu = (client.user + client.system) / 1e6;
  stats.cpuMsPerRequest.client = (clientCpu * 1000) / n;
  if (after.length) {
    const server = groups.server ? cpuBetween(before, after, groups.server(after)) : 0;
    const postgres = groups.postgres ? cpuBetween(before, after, groups.postgres(after)) : 0;
    if (groups.server) stats.cpuMsPerRequest.server = (server * 1000) / n;
    if (groups.postgres) stats.cpuMsPerRequest.postgres = (postgres * 1000) / n;
    if (busyBefore !== undefined && busyAfter !== undefined) stats.otherCpu = Math.max(0, busyAfter - busyBefore - server - postgres - clientCpu) / (seconds * cores);
  }
  stats.latencies = latencies;
  stats.seconds = seconds;
  return stats;
}

/** Mean resources per successful response; NaN when none succeeded. */
const meanResults = (s: Stats) => (s.latencies.length > s.errors ? s.resultTotal / (s.latencies.length - s.errors) : Number.NaN);
const meanBytesOf = (s: Stats) => (s.latencies.length ? s.bytesTotal / s.latencies.length : Number.NaN);

function noteError(stats: Stats, kind: string, message: string): void {
  stats.errors++;
  stats.errorKinds.set(kind, (stats.errorKinds.get(kind) ?? 0) + 1);
  stats.firstError ??= `${kind}: ${message}`;
}

interface CbResponse {
  status: number;
  /** 'Type/id' of match and include entries. */
  ids: string[];
  bytes: number;
  warning?: string;
  error?: string;
}

async function cbGet(base: string, path: string): Promise<CbResponse> {
  const res = await fetch(`${base}/fhir/${path}`, {
    headers: { accept: 'application/fhir+json', prefer: 'handling=strict' },
    signal: AbortSignal.timeout(60_000),
  });
  const body = await res.text();
  const bytes = Buffer.byteLength(body);
  if (res.status !== 200) {
    let diagnostics = body.slice(0, 300);
    try {
      const oo = JSON.parse(body) as OperationOutcome;
      diagnostics = oo.issue?.map((i) => i.diagnostics ?? i.code).join('; ') ?? diagnostics;
    } catch {
      // not JSON
    }
    return { status: res.status, ids: [], bytes, error: diagnostics };
  }
  const bundle = JSON.parse(body) as Bundle;
  const ids: string[] = [];
  let warning: string | undefined;
  for (const e of bundle.entry ?? []) {
    if (e.search?.mode === 'outcome') warning ??= (e.resource as OperationOutcome | undefined)?.issue?.map((i) => i.diagnostics).join('; ');
    else if (e.resource) ids.push(`${e.resource.resourceType}/${e.resource.id}`);
  }
  return { status: 200, ids, bytes, warning };
}

function searchPath(q: QueryDef, i: number): string {
  return `${q.resourceType}?${new URLSearchParams(q.params(i)).toString()}`;
}

/** Per worker, a deterministic sequence of parameter-set indexes (the same for CareBridge and raw SQL). */
function indexStream(q: QueryDef, concurrency: number): (worker: number) => number {
  const rnds = Array.from({ length: concurrency }, (_, w) => prng(1000 + w));
  return (w) => Math.floor(rnds[w]!() * q.size);
}

async function measureCareBridge(q: QueryDef, o: Options, server: ServerChild, dbName: string): Promise<Stats> {
  const next = indexStream(q, o.concurrency);
  return measure(
    `CareBridge ${q.key}`,
    o.durationS * 1000,
    o.concurrency,
    { server: (procs) => processTree(server.child.pid!, procs), postgres: (procs) => postgresProcesses(dbName, procs) },
    async (w, stats) => {
      try {
        const r = await cbGet(server.base, searchPath(q, next(w)));
        stats.bytesTotal += r.bytes;
        if (r.status !== 200) return noteError(stats, `HTTP ${r.status}`, r.error ?? '');
        stats.resultTotal += r.ids.length;
        if (r.warning) stats.firstWarning ??= r.warning;
      } catch (error) {
        noteError(stats, 'request failed', (error as Error).message);
      }
    },
  );
}

async function measureRaw(q: QueryDef, o: Options, pool: pg.Pool, dbName: string): Promise<Stats> {
  const next = indexStream(q, o.concurrency);
  return measure(
    `raw SQL ${q.key}`,
    o.durationS * 1000,
    o.concurrency,
    { postgres: (procs) => postgresProcesses(dbName, procs) },
    async (w, stats) => {
      const sql = q.raw(next(w));
      try {
        const res = await pool.query<{ content: string }>(sql.text, sql.values);
        stats.resultTotal += res.rows.length;
        for (const row of res.rows) stats.bytesTotal += row.content.length;
      } catch (error) {
        noteError(stats, 'SQL error', (error as Error).message);
      }
    },
  );
}

/** Same resources from both? Compares sorted 'Type/id' lists for the first CHECKS parameter sets. */
async function check(q: QueryDef, server: ServerChild, pool: pg.Pool): Promise<{ same: number; tried: number; example?: string }> {
  let same = 0;
  let tried = 0;
  let example: string | undefined;
  for (let i = 0; i < Math.min(CHECKS, q.size); i++) {
    const cb = await cbGet(server.base, searchPath(q, i));
    if (cb.status !== 200) continue;
    const sql = q.raw(i);
    const raw = await pool.query<{ id: string; resource_type: string }>(sql.text, sql.values);
    const a = [...cb.ids].sort();
    const b = raw.rows.map((r) => `${r.resource_type}/${r.id}`).sort();
    tried++;
    if (a.length === b.length && a.every((x, j) => x === b[j])) same++;
    else example ??= `${searchPath(q, i)}: CareBridge ${a.length} resources, raw SQL ${b.length}`;
  }
  return { same, tried, example };
}

// ---------------------------------------------------------------------------------------------
// EXPLAIN

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Alias?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

interface Explained {
  builder?: string;
  error?: string;
  top?: string;
  /** Scan nodes in plan order (the first is usually the one driving the plan). */
  scans: string[];
  seqScans: string[];
  planMs?: number;
  execMs?: number;
  rawPlanMs?: number;
  rawExecMs?: number;
  text?: string;
  sql?: string;
}

const SCAN_ABBREV: Record<string, string> = { 'Index Scan': 'idx', 'Index Only Scan': 'ios', 'Bitmap Index Scan': 'bitmap', 'Seq Scan': 'SEQ' };

function scansOf(node: PlanNode, out: string[]): void {
  const abbrev = SCAN_ABBREV[node['Node Type']];
  if (abbrev) {
    const what = `${abbrev} ${node['Index Name'] ?? node['Relation Name'] ?? '?'}`;
    if (!out.includes(what)) out.push(what);
  }
  for (const child of node.Plans ?? []) scansOf(child, out);
}

function seqScansOf(node: PlanNode, big: Map<string, number>, out: string[]): void {
  if (node['Node Type'] === 'Seq Scan' && node['Relation Name']) {
    const rows = big.get(node['Relation Name']);
    if (rows !== undefined) out.push(`${node['Relation Name']} (${thousands(Math.round(rows))} rows)`);
  }
  for (const child of node.Plans ?? []) seqScansOf(child, big, out);
}

async function explainAll(queries: QueryDef[], pool: pg.Pool): Promise<Map<string, Explained>> {
  const big = new Map(
    (
      await pool.query<{ relname: string; reltuples: number }>(
        `SELECT c.relname, c.reltuples::float8 AS reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind = 'r' AND c.reltuples > 10000`,
        [SCHEMA],
      )
    ).rows.map((r) => [r.relname, r.reltuples]),
  );
  const out = new Map<string, Explained>();
  for (const q of queries) {
    const e: Explained = { scans: [], seqScans: [] };
    out.set(q.key, e);
    const raw = q.raw(0);
    try {
      await pool.query(raw.text, raw.values); // warm
      const rawJson = await pool.query<{ 'QUERY PLAN': Array<{ 'Planning Time': number; 'Execution Time': number }> }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${raw.text}`, raw.values);
      e.rawPlanMs = rawJson.rows[0]!['QUERY PLAN'][0]!['Planning Time'];
      e.rawExecMs = rawJson.rows[0]!['QUERY PLAN'][0]!['Execution Time'];
    } catch (error) {
      e.rawExecMs = undefined;
      console.warn(`EXPLAIN of the raw SQL of ${q.key} failed: ${(error as Error).message}`);
    }
    const generated: GeneratedSql | { error: string } = await carebridgeSearchSql(SCHEMA, q.resourceType, q.params(0), PAGE + 1);
    if ('error' in generated) {
      e.error = generated.error;
      continue;
    }
    e.builder = generated.builder;
    e.sql = generated.sql;
    try {
      await pool.query(generated.sql, generated.params); // warm, like the raw SQL
      const text = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${generated.sql}`, generated.params);
      e.text = text.rows.map((r) => r['QUERY PLAN']).join('\n');
      e.top = text.rows[0]?.['QUERY PLAN'].replace(/\s+\(cost=[^)]*\)/, '').trim();
      const json = await pool.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode; 'Planning Time': number; 'Execution Time': number }> }>(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${generated.sql}`,
        generated.params,
      );
      const plan = json.rows[0]!['QUERY PLAN'][0]!;
      e.planMs = plan['Planning Time'];
      e.execMs = plan['Execution Time'];
      seqScansOf(plan.Plan, big, e.seqScans);
      scansOf(plan.Plan, e.scans);
    } catch (error) {
      e.error = `EXPLAIN failed: ${(error as Error).message}`;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function startFloor(bytes: number, workers: number): Promise<ServerChild> {
  return startServerChild({ script: 'scripts/bench/http-floor.ts', env: { FLOOR_BODY_BYTES: String(Math.round(bytes)), FLOOR_WORKERS: String(workers) }, readyTimeoutMs: 30_000 });
}

/** HEAD and the number of changed files under src/ (others edit the server while this runs). */
function sourceVersion(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\n').filter(Boolean).length;
    return dirty ? `${head} + ${dirty} changed files under src/` : head;
  } catch {
    return 'unknown (no git)';
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const o = options();
  if (!existsSync(o.corpus)) throw new Error(`corpus directory not found: ${o.corpus}`);
  const pgInfo = (
    await adminQuery<{ v: string; sb: string; wm: string; ecs: string; rpc: string; jit: string }>(
      o.adminUrl,
      `SELECT current_setting('server_version') AS v, current_setting('shared_buffers') AS sb, current_setting('work_mem') AS wm,
              current_setting('effective_cache_size') AS ecs, current_setting('random_page_cost') AS rpc, current_setting('jit') AS jit`,
    )
  )[0]!;
  const corpusShown = relative(REPO_ROOT, o.corpus).startsWith('../..') ? o.corpus : relative(REPO_ROOT, o.corpus);
  console.log(
    `machine: ${cores} cores (${cpus()[0]?.model.trim() ?? 'unknown cpu'}), ${(totalmem() / 2 ** 30).toFixed(0)} GB, node ${process.version}, ` +
      `PostgreSQL ${pgInfo.v} at ${new URL(o.adminUrl).host} (shared_buffers ${pgInfo.sb}, work_mem ${pgInfo.wm}, effective_cache_size ${pgInfo.ecs}, ` +
      `random_page_cost ${pgInfo.rpc}, jit ${pgInfo.jit}), load average ${loadavg()[0]!.toFixed(2)}`,
  );
  console.log(`CareBridge source: ${sourceVersion()}; started ${new Date().toISOString()}`);

  const db = await openDb(o);
  let server: ServerChild | undefined;
  let floor: ServerChild | undefined;
  let pool: pg.Pool | undefined;
  try {
    const t0 = Date.now();
    server = await startServerChild({
      env: { DATABASE_URL: db.url, DATA_DIR: undefined, REDIS_URL: undefined, WORKERS: String(o.workers), LOG_LEVEL: 'warn' },
      nodeFlags: o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [],
      echo: o.echoServer,
    });
    console.log(`CareBridge ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (database ${db.name}, workers ${o.workers}, port ${server.port})`);

    let loadLine = '';
    if (db.fresh) {
      console.log(`loading ≥ ${thousands(o.resources)} resources from ${corpusShown} (load concurrency ${o.loadConcurrency}) ...`);
      const l = await load(o, server);
      loadLine =
        `load: ${thousands(l.bundles)} transaction bundles, ${thousands(l.resources)} resources, ${(l.bytes / 2 ** 20).toFixed(0)} MB in ${l.seconds.toFixed(0)} s = ` +
        `${(l.resources / l.seconds).toFixed(0)} resources/s (bundle p50 ${fmt(percentile(l.latencies, 50))} ms, p95 ${fmt(percentile(l.latencies, 95))} ms, concurrency ${o.loadConcurrency})`;
      console.log(loadLine);
      const a0 = Date.now();
      await adminQuery(db.url, 'VACUUM (ANALYZE)');
      console.log(`VACUUM (ANALYZE) in ${((Date.now() - a0) / 1000).toFixed(0)} s`);
      await adminQuery(o.adminUrl, `COMMENT ON DATABASE ${db.name} IS '${`carebridge search bench: ${corpusShown}, ${l.resources} resources, loaded ${new Date().toISOString()}`.replace(/'/g, "''")}'`);
      db.loaded();
      if (o.keepDb) console.log(`database ${db.name} will be kept: rerun the queries with --reuse-db ${db.name}; drop it with DROP DATABASE ${db.name} WITH (FORCE)`);
    } else {
      const comment = await adminQuery<{ c: string | null }>(o.adminUrl, `SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1`, [db.name]);
      loadLine = `load: skipped (--reuse-db ${db.name}: ${comment[0]?.c ?? 'no description'})`;
      console.log(loadLine);
    }

    const samples = await sample(db.url);
    const total = [...samples.counts.values()].reduce((a, b) => a + b, 0);
    const size = (await adminQuery<{ s: string }>(o.adminUrl, 'SELECT pg_size_pretty(pg_database_size($1)) AS s', [db.name]))[0]!.s;
    const top = [...samples.counts.entries()].slice(0, 6).map(([t, n]) => `${t} ${thousands(n)}`).join(', ');
    console.log(`data: ${thousands(total)} resources (${top}, ...), database ${size}`);
    console.log(
      `samples: ${samples.patients.length} patients, ${samples.observations.length} (patient, LOINC code) pairs with an Observation in [2015, 2020), ` +
        `${samples.activeMedPatients.length} patients with a MedicationRequest status=${samples.medStatus}; ` +
        `Provenance resources: ${samples.counts.get('Provenance') ?? 0}, MedicationRequest.medicationReference: ${samples.medicationReferences}`,
    );
    const settings =
      `settings: duration ${o.durationS} s per query and side, concurrency ${o.concurrency} (HTTP clients and pg Pool size), CareBridge workers ${o.workers}, ` +
      `page ${PAGE} (default _count), Prefer: handling=strict, random parameters from the samples (same sequence for both sides), 2 s warm-up each`;
    console.log(settings);

    let queries = defineQueries(samples).filter((q) => q.size > 0);
    if (o.only) queries = queries.filter((q) => o.only!.has(q.key));
    for (const q of queries) console.log(`  ${q.key.padEnd(3)} ${q.label}: e.g. GET /fhir/${decodeURIComponent(searchPath(q, 0))}${q.note ? `\n      note: ${q.note}` : ''}`);

    pool = new pg.Pool({ connectionString: db.url, max: o.concurrency });
    pool.on('error', () => undefined);
    const checks = new Map<string, Awaited<ReturnType<typeof check>>>();
    for (const q of queries) checks.set(q.key, await check(q, server, pool));

    const results: Array<{ q: QueryDef; cb: Stats; raw: Stats }> = [];
    for (const q of queries) {
      const cb = await measureCareBridge(q, o, server, db.name);
      const raw = await measureRaw(q, o, pool, db.name);
      results.push({ q, cb, raw });
      console.log(
        `  ${q.key}: CareBridge p95 ${fmt(percentile(cb.latencies, 95), 1)} ms (${cb.errors} errors), raw SQL p95 ${fmt(percentile(raw.latencies, 95), 1)} ms`,
      );
    }

    // The floor's body: the mean CareBridge response size over the queries that answered (mean of the per-query means).
    const okRows = results.filter((r) => r.cb.latencies.length > r.cb.errors);
    const meanBytes = okRows.length ? okRows.reduce((a, r) => a + meanBytesOf(r.cb), 0) / okRows.length : 1024;
    floor = await startFloor(meanBytes, o.workers);
    const floorBase = floor.base;
    const floorStats = await measure(
      'HTTP floor',
      o.durationS * 1000,
      o.concurrency,
      { server: (procs) => processTree(floor!.child.pid!, procs) },
      async (_w, stats) => {
        try {
          const res = await fetch(`${floorBase}/fhir/Patient?x=1`, { headers: { accept: 'application/fhir+json' }, signal: AbortSignal.timeout(60_000) });
          const body = await res.text();
          stats.bytesTotal += Buffer.byteLength(body);
          if (res.status !== 200) return noteError(stats, `HTTP ${res.status}`, body.slice(0, 200));
          JSON.parse(body);
          stats.resultTotal += 1;
        } catch (error) {
          noteError(stats, 'request failed', (error as Error).message);
        }
      },
    );
    await floor.stop();
    floor = undefined;

    const explained = await explainAll(queries, pool);

    // ------------------------------------------------------------------------------------------
    console.log('');
    console.log(`=== Search benchmark: ${thousands(total)} resources, ${o.durationS} s per query and side, concurrency ${o.concurrency}, workers ${o.workers} ===`);
    console.log(loadLine);
    const ms = (s: Stats, p: number) => fmt(percentile(s.latencies, p), 1);
    const rps = (s: Stats) => fmt(s.latencies.length / s.seconds);
    const pct = (v: number | undefined) => (v === undefined ? '-' : `${Math.round(v * 100)}`);
    const rows = results.map(({ q, cb, raw }) => {
      const p95 = percentile(cb.latencies, 95);
      const rawP95 = percentile(raw.latencies, 95);
      const allErrors = cb.errors === cb.latencies.length;
      return [
        `${q.key} ${q.label}`,
        rps(cb),
        ms(cb, 50),
        ms(cb, 95),
        ms(cb, 99),
        fmt(meanResults(cb), 1),
        String(cb.errors),
        allErrors ? '-' : p95 < 50 ? 'yes' : 'NO',
        rps(raw),
        ms(raw, 50),
        ms(raw, 95),
        ms(raw, 99),
        fmt(meanResults(raw), 1),
        allErrors ? '-' : `${fmt(p95 / rawP95, 1)}x`,
        `${pct(cb.otherCpu)}/${pct(raw.otherCpu)}`,
      ];
    });
    rows.push([
      `HTTP floor: express, ${(meanBytes / 1024).toFixed(1)} KB body`,
      rps(floorStats),
      ms(floorStats, 50),
      ms(floorStats, 95),
      ms(floorStats, 99),
      '-',
      String(floorStats.errors),
      '',
      '',
      '',
      '',
      '',
      '',
      '',
      `${pct(floorStats.otherCpu)}`,
    ]);
    console.log('');
    console.log(
      formatTable(
        ['query', 'CB req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'results', 'errors', 'p95<50', 'raw req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'rows', 'p95 CB/raw', 'other CPU %'],
        rows,
      ),
    );
    console.log(
      'CB = CareBridge over HTTP; raw = hand-written SQL over the same tables through a pg Pool; results/rows = mean resources per response (matches + includes).\n' +
        'other CPU % = share of the machine used by other processes during the CareBridge / raw measurement (noise indicator).',
    );
    const cpuMs = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(2));
    console.log('');
    console.log(
      formatTable(
        ['CPU ms per request', 'CB server', 'CB PostgreSQL', 'CB bench client', 'raw PostgreSQL', 'raw bench client'],
        [
          ...results.map(({ q, cb, raw }) => [
            `${q.key} ${q.label}`,
            cpuMs(cb.cpuMsPerRequest.server),
            cpuMs(cb.cpuMsPerRequest.postgres),
            cpuMs(cb.cpuMsPerRequest.client),
            cpuMs(raw.cpuMsPerRequest.postgres),
            cpuMs(raw.cpuMsPerRequest.client),
          ]),
          ['HTTP floor (express)', cpuMs(floorStats.cpuMsPerRequest.server), '', cpuMs(floorStats.cpuMsPerRequest.client), '', ''],
        ],
      ),
    );
    console.log('(from /proc: CB server = the CareBridge process tree, PostgreSQL = the database\'s backends + WAL writer, checkpointer, background writer.)');
    const problems = results.filter((r) => r.cb.errors > 0 || r.cb.firstWarning || r.raw.errors > 0);
    if (problems.length) {
      console.log('');
      for (const r of problems) {
        if (r.cb.errors) console.log(`${r.q.key}: CareBridge ${r.cb.errors} errors (${[...r.cb.errorKinds].map(([k, n]) => `${k} × ${n}`).join(', ')}); first: ${r.cb.firstError}`);
        if (r.cb.firstWarning) console.log(`${r.q.key}: CareBridge warning (OperationOutcome entry): ${r.cb.firstWarning}`);
        if (r.raw.errors) console.log(`${r.q.key}: raw SQL ${r.raw.errors} errors; first: ${r.raw.firstError}`);
      }
    }
    console.log('');
    console.log(
      formatTable(
        ['query', 'same results', 'CareBridge SQL: top plan line', 'scans in plan order', 'Seq Scan on >10k rows', 'plan ms', 'exec ms', 'raw plan ms', 'raw exec ms'],
        queries.map((q) => {
          const e = explained.get(q.key)!;
          const c = checks.get(q.key)!;
          return [
            q.key,
            c.tried ? `${c.same}/${c.tried}` : 'n/a',
            e.error ? `(no plan: ${e.error.slice(0, 90)})` : (e.top ?? '-').slice(0, 90),
            e.scans.join(' > ').slice(0, 120),
            e.error ? '-' : e.seqScans.length ? e.seqScans.join(', ') : 'none',
            fmt(e.planMs ?? Number.NaN, 2),
            fmt(e.execMs ?? Number.NaN, 2),
            fmt(e.rawPlanMs ?? Number.NaN, 2),
            fmt(e.rawExecMs ?? Number.NaN, 2),
          ];
        }),
      ),
    );
    const builder = [...explained.values()].find((e) => e.builder)?.builder;
    console.log(
      `EXPLAIN (ANALYZE, BUFFERS) of the first parameter set, statement from ${builder ?? 'src/search'} (main page statement only: ` +
        '_include / _revinclude run as further statements), run warm; plan ms / exec ms = Planning / Execution Time (statements without a name, as ' +
        'both sides send them, are planned on every execution). same results = identical resource lists from CareBridge and the raw SQL for the first ' +
        `${CHECKS} parameter sets.`,
    );
    for (const q of queries) {
      const c = checks.get(q.key)!;
      if (c.example) console.log(`  ${q.key} differs, e.g. ${decodeURIComponent(c.example)}`);
    }
    if (o.plans) {
      for (const q of queries) {
        const e = explained.get(q.key)!;
        if (!e.text) continue;
        console.log(`\n--- ${q.key} ${q.label}: GET /fhir/${decodeURIComponent(searchPath(q, 0))}\n${e.sql}\n${e.text}`);
      }
    }
    console.log(`\ntotal time ${((Date.now() - started) / 1000).toFixed(0)} s; load average now ${loadavg()[0]!.toFixed(2)}`);
  } finally {
    await pool?.end().catch(() => undefined);
    await floor?.stop().catch(() => undefined);
    await server?.stop().catch((error) => console.error(`stopping the server failed: ${(error as Error).message}`));
    await db.finish().catch((error) => console.error(`dropping ${db.name} failed: ${(error as Error).message}`));
  }
}

main().catch((error) => {
  console.error(`\nsearch benchmark FAILED: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
});
