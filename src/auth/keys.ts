/**
 * The tenant's token-signing key: an ES256 key pair made on first use and kept in the tenant's
 * schema (so every worker process signs with the same key), published at the JWKS endpoint.
 * Keys are per tenant, so a token signed for one tenant never verifies at another.
 */
import { exportJWK, generateKeyPair, importJWK, type JWK, type CryptoKey } from 'jose';
import { randomUUID } from 'node:crypto';
import type { ResourceStore } from '../store/resource-store.js';
import { quoteIdent } from '../store/schema.js';

export const SIGNING_ALG = 'ES256';

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

const cache = new Map<string, Promise<SigningKey>>();

async function loadOrCreate(store: ResourceStore): Promise<SigningKey> {
  const s = quoteIdent(store.schema);
  const row = await store.db.transaction(async (tx) => {
    // One key per tenant even when several processes start at once.
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`carebridge:auth-key:${store.schema}`]);
    const found = await tx.query<{ kid: string; private_jwk: string; public_jwk: string }>(`SELECT kid, private_jwk, public_jwk FROM ${s}.auth_key ORDER BY created_at LIMIT 1`);
    if (found.rows[0]) return found.rows[0];
    const pair = await generateKeyPair(SIGNING_ALG, { extractable: true });
    const kid = randomUUID();
    const created = { kid, private_jwk: JSON.stringify(await exportJWK(pair.privateKey)), public_jwk: JSON.stringify(await exportJWK(pair.publicKey)) };
    await tx.query(`INSERT INTO ${s}.auth_key (kid, alg, private_jwk, public_jwk) VALUES ($1, $2, $3, $4)`, [kid, SIGNING_ALG, created.private_jwk, created.public_jwk]);
    return created;
  });
  const publicJwk: JWK = { ...(JSON.parse(row.public_jwk) as JWK), kid: row.kid, alg: SIGNING_ALG, use: 'sig' };
  return {
    kid: row.kid,
    privateKey: (await importJWK(JSON.parse(row.private_jwk) as JWK, SIGNING_ALG)) as CryptoKey,
    publicKey: (await importJWK(publicJwk, SIGNING_ALG)) as CryptoKey,
    publicJwk,
  };
}

/** The tenant's signing key (cached per process; keyed by database and schema). */
export function signingKey(store: ResourceStore): Promise<SigningKey> {
  const key = `${dbKey(store)}:${store.schema}`;
  let pending = cache.get(key);
  if (!pending) {
    pending = loadOrCreate(store);
    pending.catch(() => cache.delete(key));
    cache.set(key, pending);
  }
  return pending;
}

/** The JWKS document of the tenant's public keys. */
export async function publicJwks(store: ResourceStore): Promise<{ keys: JWK[] }> {
  return { keys: [(await signingKey(store)).publicJwk] };
}

// Several test servers run in one process, each with its own database: key the cache per Database object.
const dbIds = new WeakMap<object, string>();
function dbKey(store: ResourceStore): string {
  let id = dbIds.get(store.db);
  if (!id) dbIds.set(store.db, (id = randomUUID()));
  return id;
}
