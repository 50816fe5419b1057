/**
 * Reindex from the command line: re-extract the search index rows of existing resources with the
 * tenant's current search parameters (custom SearchParameter resources included), in batches,
 * printing progress. Uses the store the server would: DATABASE_URL, else the embedded store in
 * DATA_DIR (which a running server holds locked: stop it, or use POST [base]/$reindex instead).
 *
 *   npx tsx scripts/tools/reindex.ts [--tenant default] [--type Patient,Observation] [--batch 500]
 *
 * Exit status: 0 when the job completed, 1 when it failed, 2 on bad arguments, 130 if interrupted.
 */
import { loadConfig } from '../../src/config.js';
import { isResourceType } from '../../src/fhir/definitions.js';
import { createReindexJob, DEFAULT_REINDEX_BATCH, runReindexJob, SETTLE_MS, type ReindexProgress } from '../../src/search/reindex-job.js';
import { openDatabase } from '../../src/store/engines.js';
import { DEFAULT_TENANT, Tenants } from '../../src/store/tenants.js';

function usage(message: string): never {
  console.error(`reindex: ${message}\nusage: npx tsx scripts/tools/reindex.ts [--tenant default] [--type Patient,Observation] [--batch 500]`);
  process.exit(2);
}

function parseArgs(argv: string[]): { tenant: string; types?: string[]; batch: number } {
  const out: { tenant: string; types?: string[]; batch: number } = { tenant: DEFAULT_TENANT, batch: DEFAULT_REINDEX_BATCH };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => (eq > 0 ? arg.slice(eq + 1) : (argv[++i] ?? usage(`${name} needs a value`)));
    switch (name) {
      case '--tenant':
        out.tenant = value();
        break;
      case '--type':
      case '--types': {
        const types = value().split(',').map((t) => t.trim()).filter(Boolean);
        for (const t of types) if (!isResourceType(t)) usage(`'${t}' is not an R4 resource type`);
        out.types = [...(out.types ?? []), ...types];
        break;
      }
      case '--batch': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 10_000) usage('--batch must be an integer from 1 to 10000');
        out.batch = n;
        break;
      }
      case '-h':
      case '--help':
        console.log('usage: npx tsx scripts/tools/reindex.ts [--tenant default] [--type Patient,Observation] [--batch 500]');
        process.exit(0);
      default:
        usage(`unknown argument '${arg}'`);
    }
  }
  return out;
}

function line(p: ReindexProgress): string {
  const percent = p.total > 0 ? ((p.processed / p.total) * 100).toFixed(1) : '100.0';
  return `reindex ${p.jobId}: ${p.state} ${p.processed}/${p.total} (${percent}%) ${p.ratePerSecond}/s`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const config = loadConfig();
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  try {
    const store = await new Tenants(db).store(args.tenant);
    const jobId = await createReindexJob(store, args.types);
    console.log(`reindex ${jobId}: tenant ${args.tenant}, ${args.types ? args.types.join(', ') : 'all types'}, batches of ${args.batch} (${db.engine})`);
    const controller = new AbortController();
    const interrupt = () => controller.abort();
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
    const final = await runReindexJob(store, jobId, {
      types: args.types,
      batchSize: args.batch,
      // Server processes sharing PostgreSQL pick up new parameters within the refresh interval; the
      // embedded store is locked by this process, so nobody else is writing.
      settleMs: db.engine === 'postgres' ? SETTLE_MS : 0,
      signal: controller.signal,
      onProgress: (p) => console.log(line(p)),
    });
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    if (final.error) console.error(`reindex ${jobId}: ${final.error}`);
    return final.state === 'completed' ? 0 : final.state === 'cancelled' ? 130 : 1;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`reindex: ${(error as Error).message}`);
    process.exit(1);
  },
);
