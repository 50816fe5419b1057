/**
 * The authorization server's rows in the tenant's schema (migration in src/store/schema.ts):
 * clients, users, authorization codes, refresh tokens, revoked token ids, used client-assertion
 * ids and EHR launch contexts. Each tenant has its own, so nothing crosses tenants.
 */
import { randomUUID } from 'node:crypto';
import type { ResourceStore } from '../store/resource-store.js';
import { quoteIdent } from '../store/schema.js';
import { newToken, tokenHash } from './secrets.js';

export type ClientKind = 'public' | 'confidential' | 'backend';
export type ClientAuthMethod = 'none' | 'client_secret_basic' | 'private_key_jwt';

export interface AuthClient {
  clientId: string;
  name: string;
  kind: ClientKind;
  authMethod: ClientAuthMethod;
  secretHash?: string;
  redirectUris: string[];
  /** The scopes the client may be granted, space-separated. */
  scope: string;
  jwks?: { keys: unknown[] };
  jwksUri?: string;
}

export interface AuthUser {
  id: string;
  username: string;
  passwordHash: string;
  /** Practitioner/1, Patient/2 or RelatedPerson/3. */
  fhirUser: string;
  /** The patient a Patient or RelatedPerson user is limited to. */
  patientId?: string;
  totpSecret?: string;
  failedLogins: number;
  lockedUntil?: Date;
}

export interface CodeGrant {
  clientId: string;
  userId: string;
  redirectUri: string;
  scope: string;
  codeChallenge?: string;
  patient?: string;
  encounter?: string;
  nonce?: string;
  /** The family of every token issued from this code (codeFamily): what a reuse revokes. */
  family?: string;
}

/**
 * The token family of an authorization code, derived from its stored hash: the access tokens
 * (claim `fam`) and refresh tokens issued from the code and from its refreshes share it, so a
 * second use of the code can revoke them all (RFC 6749 §4.1.2) without another column.
 */
export function codeFamily(codeHash: string): string {
  return `code-${tokenHash(`family:${codeHash}`).slice(0, 40)}`;
}

export interface RefreshGrant {
  family: string;
  clientId: string;
  userId?: string;
  scope: string;
  patient?: string;
  encounter?: string;
  fhirUser?: string;
}

const CODE_TTL_SECONDS = 60;
export const REFRESH_TTL_SECONDS = 30 * 24 * 3600;
const LAUNCH_TTL_SECONDS = 3600;

const opt = (v: unknown) => (v === null || v === undefined ? undefined : (v as string));
const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);

export class AuthStore {
  private readonly s: string;

  constructor(readonly store: ResourceStore) {
    this.s = quoteIdent(store.schema);
  }

  get tenant(): string {
    return this.store.schema.replace(/^tenant_/, '');
  }

  private q<T = Record<string, unknown>>(sql: string, params: unknown[] = []) {
    return this.store.db.query<T>(sql.replaceAll('$s', this.s), params);
  }

  // Clients

  async insertClient(c: AuthClient): Promise<void> {
    await this.q(
      `INSERT INTO $s.auth_client (client_id, name, kind, auth_method, secret_hash, redirect_uris, scope, jwks, jwks_uri)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [c.clientId, c.name, c.kind, c.authMethod, c.secretHash ?? null, JSON.stringify(c.redirectUris), c.scope, c.jwks ? JSON.stringify(c.jwks) : null, c.jwksUri ?? null],
    );
  }

  async client(clientId: string): Promise<AuthClient | undefined> {
    const r = await this.q<Record<string, unknown>>(`SELECT * FROM $s.auth_client WHERE client_id = $1`, [clientId]);
    const row = r.rows[0];
    if (!row) return undefined;
    return {
      clientId: row.client_id as string,
      name: row.name as string,
      kind: row.kind as ClientKind,
      authMethod: row.auth_method as ClientAuthMethod,
      secretHash: opt(row.secret_hash),
      redirectUris: json(row.redirect_uris) as string[],
      scope: row.scope as string,
      jwks: row.jwks ? (json(row.jwks) as { keys: unknown[] }) : undefined,
      jwksUri: opt(row.jwks_uri),
    };
  }

  async clientCount(): Promise<number> {
    const r = await this.q<{ n: string | number }>(`SELECT count(*) AS n FROM $s.auth_client`);
    return Number(r.rows[0]?.n ?? 0);
  }

  // Users

  async insertUser(u: Omit<AuthUser, 'id' | 'failedLogins'>): Promise<string> {
    const id = randomUUID();
    await this.q(
      `INSERT INTO $s.auth_user (id, username, password_hash, fhir_user, patient_id, totp_secret) VALUES ($1, $2, $3, $4, $5, $6)`,
      [id, u.username, u.passwordHash, u.fhirUser, u.patientId ?? null, u.totpSecret ?? null],
    );
    return id;
  }

  async user(by: { id?: string; username?: string }): Promise<AuthUser | undefined> {
    const [col, value] = by.id !== undefined ? ['id', by.id] : ['username', by.username];
    const r = await this.q<Record<string, unknown>>(`SELECT * FROM $s.auth_user WHERE ${col} = $1`, [value]);
    const row = r.rows[0];
    if (!row) return undefined;
    return {
      id: row.id as string,
      username: row.username as string,
      passwordHash: row.password_hash as string,
      fhirUser: row.fhir_user as string,
      patientId: opt(row.patient_id),
      totpSecret: opt(row.totp_secret),
      failedLogins: Number(row.failed_logins),
      lockedUntil: row.locked_until ? new Date(row.locked_until as string) : undefined,
    };
  }

  /**
   * Count a failed login; the maxFailures-th in a row locks the account for lockMinutes. Once a
   * lock has run out, counting starts again from this failure.
   */
  async loginFailed(userId: string, maxFailures: number, lockMinutes: number): Promise<void> {
    const count = `CASE WHEN locked_until <= now() THEN 1 ELSE failed_logins + 1 END`;
    await this.q(
      `UPDATE $s.auth_user SET failed_logins = ${count},
         locked_until = CASE WHEN ${count} >= $2 THEN now() + make_interval(mins => $3) WHEN locked_until <= now() THEN NULL ELSE locked_until END
       WHERE id = $1`,
      [userId, maxFailures, lockMinutes],
    );
  }

  async loginSucceeded(userId: string): Promise<void> {
    await this.q(`UPDATE $s.auth_user SET failed_logins = 0, locked_until = NULL WHERE id = $1`, [userId]);
  }

  // Authorization codes: single use; a second use is refused (and reported by the caller).

  async insertCode(grant: CodeGrant): Promise<string> {
    const code = newToken();
    await this.q(
      `INSERT INTO $s.auth_code (code_hash, client_id, user_id, redirect_uri, scope, code_challenge, patient, encounter, nonce, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10))`,
      [tokenHash(code), grant.clientId, grant.userId, grant.redirectUri, grant.scope, grant.codeChallenge ?? null, grant.patient ?? null, grant.encounter ?? null, grant.nonce ?? null, CODE_TTL_SECONDS],
    );
    return code;
  }

  /** Mark the code used and return its grant; undefined if unknown, expired or already used. */
  async useCode(code: string): Promise<CodeGrant | undefined> {
    const r = await this.q<Record<string, unknown>>(
      `UPDATE $s.auth_code SET used_at = now() WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING *`,
      [tokenHash(code)],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    return {
      clientId: row.client_id as string,
      userId: row.user_id as string,
      redirectUri: row.redirect_uri as string,
      scope: row.scope as string,
      codeChallenge: opt(row.code_challenge),
      patient: opt(row.patient),
      encounter: opt(row.encounter),
      nonce: opt(row.nonce),
      family: codeFamily(row.code_hash as string),
    };
  }

  /** The family of a code that was used already (a replay), undefined for an unknown one. */
  async usedCodeFamily(code: string): Promise<string | undefined> {
    const r = await this.q<{ code_hash: string }>(`SELECT code_hash FROM $s.auth_code WHERE code_hash = $1 AND used_at IS NOT NULL`, [tokenHash(code)]);
    return r.rows[0] ? codeFamily(r.rows[0].code_hash) : undefined;
  }

  /**
   * Revoke a whole token family: its refresh tokens, and its access tokens (by their `fam` claim,
   * recorded like a revoked jti until `accessExp`, when the last of them has expired anyway).
   */
  async revokeTokenFamily(family: string, accessExp: number): Promise<void> {
    await this.revokeFamily(family);
    await this.revokeAccess(family, accessExp);
  }

  // Refresh tokens: rotated on every use; using a rotated one revokes its whole family (theft).

  async insertRefresh(grant: RefreshGrant): Promise<string> {
    const token = newToken();
    await this.q(
      `INSERT INTO $s.auth_refresh (token_hash, family, client_id, user_id, scope, patient, encounter, fhir_user, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))`,
      [tokenHash(token), grant.family, grant.clientId, grant.userId ?? null, grant.scope, grant.patient ?? null, grant.encounter ?? null, grant.fhirUser ?? null, REFRESH_TTL_SECONDS],
    );
    return token;
  }

  /**
   * Consume a refresh token for rotation. 'reused' when it was rotated before (the family is then
   * revoked, its access tokens too until `accessExp`), undefined when unknown, expired or revoked.
   */
  async rotateRefresh(token: string, accessExp: number): Promise<RefreshGrant | 'reused' | undefined> {
    const r = await this.q<Record<string, unknown>>(
      `UPDATE $s.auth_refresh SET rotated_at = now() WHERE token_hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now() RETURNING *`,
      [tokenHash(token)],
    );
    const row = r.rows[0];
    if (!row) {
      const old = await this.q<{ family: string }>(`SELECT family FROM $s.auth_refresh WHERE token_hash = $1 AND rotated_at IS NOT NULL`, [tokenHash(token)]);
      if (!old.rows[0]) return undefined;
      await this.revokeTokenFamily(old.rows[0].family, accessExp);
      return 'reused';
    }
    return refreshGrant(row);
  }

  async refreshInfo(token: string): Promise<(RefreshGrant & { exp: number }) | undefined> {
    const r = await this.q<Record<string, unknown>>(
      `SELECT * FROM $s.auth_refresh WHERE token_hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now()`,
      [tokenHash(token)],
    );
    const row = r.rows[0];
    return row ? { ...refreshGrant(row), exp: Math.floor(new Date(row.expires_at as string).getTime() / 1000) } : undefined;
  }

  /**
   * Revoke the refresh token of `clientId` and its family — the other refresh tokens and the
   * access tokens issued from the same grant (RFC 7009 §2.1: a server that can revoke access
   * tokens SHOULD when their refresh token is revoked), remembered until `accessExp`. False for a
   * token that is not a refresh token of that client.
   */
  async revokeRefresh(token: string, clientId: string, accessExp: number): Promise<boolean> {
    const r = await this.q<{ family: string }>(`SELECT family FROM $s.auth_refresh WHERE token_hash = $1 AND client_id = $2`, [tokenHash(token), clientId]);
    if (!r.rows[0]) return false;
    await this.revokeTokenFamily(r.rows[0].family, accessExp);
    return true;
  }

  private async revokeFamily(family: string): Promise<void> {
    await this.q(`UPDATE $s.auth_refresh SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL`, [family]);
  }

  // Access tokens are JWTs; revoking one records its id until it would have expired anyway.

  async revokeAccess(jti: string, exp: number): Promise<void> {
    await this.q(`INSERT INTO $s.auth_revoked (jti, expires_at) VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING`, [jti, exp]);
  }

  /** Whether the token id, or its family (claim `fam`), was revoked. */
  async isRevoked(jti: string, family?: string): Promise<boolean> {
    const r = await this.q(`SELECT 1 FROM $s.auth_revoked WHERE jti = ANY($1::text[])`, [family ? [jti, family] : [jti]]);
    return r.rows.length > 0;
  }

  /** Record a client assertion's jti; false when it was seen before (a replay). */
  async useAssertion(clientId: string, jti: string, exp: number): Promise<boolean> {
    await this.q(`DELETE FROM $s.auth_assertion WHERE expires_at < now() - interval '1 hour'`);
    const r = await this.q(
      `INSERT INTO $s.auth_assertion (client_id, jti, expires_at) VALUES ($1, $2, to_timestamp($3)) ON CONFLICT DO NOTHING RETURNING jti`,
      [clientId, jti, exp],
    );
    return r.rows.length > 0;
  }

  // EHR launch contexts, created by the EHR (admin API) and named by the `launch` parameter.

  async insertLaunch(context: { patient?: string; encounter?: string }): Promise<string> {
    const id = newToken();
    await this.q(`INSERT INTO $s.auth_launch (id, patient, encounter, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4))`, [
      id,
      context.patient ?? null,
      context.encounter ?? null,
      LAUNCH_TTL_SECONDS,
    ]);
    return id;
  }

  async launch(id: string): Promise<{ patient?: string; encounter?: string } | undefined> {
    const r = await this.q<Record<string, unknown>>(`SELECT patient, encounter FROM $s.auth_launch WHERE id = $1 AND expires_at > now()`, [id]);
    const row = r.rows[0];
    return row ? { patient: opt(row.patient), encounter: opt(row.encounter) } : undefined;
  }
}

function refreshGrant(row: Record<string, unknown>): RefreshGrant {
  return {
    family: row.family as string,
    clientId: row.client_id as string,
    userId: opt(row.user_id),
    scope: row.scope as string,
    patient: opt(row.patient),
    encounter: opt(row.encounter),
    fhirUser: opt(row.fhir_user),
  };
}
