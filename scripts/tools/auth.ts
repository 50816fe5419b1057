/**
 * Register OAuth clients and users from the command line (the same checks as POST
 * {fhir base}/admin/clients and /admin/users). Uses the store the server would: DATABASE_URL, else
 * the embedded store in DATA_DIR (locked by a running server: stop it, or use the admin API).
 *
 *   npx tsx scripts/tools/auth.ts create-client --name "Patient app" --kind public \
 *       --scope "launch/patient openid fhirUser offline_access patient/*.rs" --redirect-uri https://app.example/cb
 *   npx tsx scripts/tools/auth.ts create-client --name "Lab feed" --kind backend --scope "system/Observation.cruds" \
 *       --jwks-uri https://lab.example/.well-known/jwks.json      (or --jwks-file keys.json)
 *   npx tsx scripts/tools/auth.ts create-user --username dr.house --fhir-user Practitioner/123 [--totp]
 *       (the password is read from the AUTH_PASSWORD environment variable, never from the arguments)
 *
 * Prints the result as JSON (a client secret or TOTP secret is shown this once only).
 * Exit status: 0 done, 1 refused (the reason is printed), 2 bad arguments.
 */
import { readFileSync } from 'node:fs';
import { registerClient, registerUser } from '../../src/auth/registration.js';
import { loadConfig } from '../../src/config.js';
import { FhirError } from '../../src/fhir/outcome.js';
import { openDatabase } from '../../src/store/engines.js';
import { DEFAULT_TENANT, Tenants } from '../../src/store/tenants.js';

const USAGE = `usage:
  npx tsx scripts/tools/auth.ts create-client --name NAME --kind public|confidential|backend --scope "SCOPES"
      [--redirect-uri URL]... [--jwks-uri URL | --jwks-file FILE] [--client-id ID] [--tenant default]
  AUTH_PASSWORD=... npx tsx scripts/tools/auth.ts create-user --username NAME --fhir-user Practitioner/ID [--totp] [--tenant default]`;

function usage(message: string): never {
  console.error(`auth: ${message}\n${USAGE}`);
  process.exit(2);
}

/** --name value or --name=value; repeated options collect into a list. */
function parseOptions(argv: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) usage(`unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const flag = name === 'totp' || name === 'help';
    const value = eq > 0 ? arg.slice(eq + 1) : flag ? 'true' : (argv[++i] ?? usage(`--${name} needs a value`));
    out.set(name, [...(out.get(name) ?? []), value]);
  }
  return out;
}

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  if (!command || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const options = parseOptions(rest);
  const one = (name: string) => options.get(name)?.at(-1);
  const known = command === 'create-client' ? ['name', 'kind', 'scope', 'redirect-uri', 'jwks-uri', 'jwks-file', 'client-id', 'tenant'] : ['username', 'fhir-user', 'totp', 'tenant'];
  if (command !== 'create-client' && command !== 'create-user') usage(`unknown command '${command}'`);
  for (const name of options.keys()) if (!known.includes(name)) usage(`unknown option --${name} for ${command}`);

  const password = process.env.AUTH_PASSWORD;
  if (command === 'create-user' && !password) usage('set the password in the AUTH_PASSWORD environment variable');
  const config = loadConfig();
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  try {
    const store = await new Tenants(db).store(one('tenant') ?? DEFAULT_TENANT);
    let result: unknown;
    if (command === 'create-client') {
      const jwksFile = one('jwks-file');
      result = await registerClient(store, {
        name: one('name'),
        kind: one('kind'),
        scope: one('scope'),
        redirectUris: options.get('redirect-uri') ?? [],
        jwksUri: one('jwks-uri'),
        jwks: jwksFile ? (JSON.parse(readFileSync(jwksFile, 'utf8')) as unknown) : undefined,
        clientId: one('client-id'),
      });
    } else {
      result = await registerUser(store, { username: one('username'), password, fhirUser: one('fhir-user'), totp: one('totp') === 'true' });
    }
    console.log(JSON.stringify(result, null, 2));
    return 0;
  } catch (error) {
    if (!(error instanceof FhirError)) throw error;
    console.error(`auth: ${error.message}`);
    return 1;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
