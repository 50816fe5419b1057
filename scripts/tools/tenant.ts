/**
 * Tenants from the command line: create one (its PostgreSQL schema and tables) or list them.
 * Uses the store the server would: DATABASE_URL, else the embedded store in DATA_DIR (which a
 * running server holds locked: stop it, or use POST /admin/tenants instead).
 *
 *   npx tsx scripts/tools/tenant.ts create <name>
 *   npx tsx scripts/tools/tenant.ts list
 *
 * Exit status: 0 done, 1 failed (or the tenant already exists), 2 bad arguments.
 */
import { loadConfig } from '../../src/config.js';
import { FhirError } from '../../src/fhir/outcome.js';
import { openDatabase } from '../../src/store/engines.js';
import { DEFAULT_TENANT, Tenants } from '../../src/store/tenants.js';
import { checkTenantName, createTenant, listTenants } from '../../src/tenants/directory.js';

const USAGE = 'usage: npx tsx scripts/tools/tenant.ts create <name> | list';

function usage(message: string): never {
  console.error(`tenant: ${message}\n${USAGE}`);
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  const [command, name, ...rest] = argv;
  if (command === '-h' || command === '--help') {
    console.log(USAGE);
    return 0;
  }
  if (command !== 'create' && command !== 'list') usage(command ? `unknown command '${command}'` : 'a command is required');
  if (command === 'create') {
    if (!name || rest.length > 0) usage('create takes one tenant name');
    try {
      checkTenantName(name);
    } catch (error) {
      usage((error as FhirError).issues[0]?.diagnostics ?? 'invalid tenant name');
    }
  } else if (name) usage('list takes no arguments');
  const config = loadConfig();
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  try {
    const tenants = new Tenants(db);
    if (command === 'list') {
      for (const t of new Set([DEFAULT_TENANT, ...(await listTenants(tenants))])) console.log(t);
      return 0;
    }
    if (!(await createTenant(tenants, name!))) {
      console.error(`tenant: '${name}' already exists`);
      return 1;
    }
    console.log(`tenant ${name} created (schema tenant_${name}, ${db.engine}); FHIR base ${config.baseUrl ?? ''}/t/${name}/fhir`);
    return 0;
  } finally {
    await db.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`tenant: ${(error as Error).message}`);
    process.exit(1);
  },
);
