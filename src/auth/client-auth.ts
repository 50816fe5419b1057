/**
 * Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3):
 * - public clients (apps in a browser or on a phone): client_id only, PKCE does the rest;
 * - client_secret_basic: HTTP Basic with the registered secret (the bootstrap administrator);
 * - private_key_jwt (SMART Backend Services): a client_assertion JWT signed RS384 or ES384 with a
 *   key from the client's registered JWKS or jwks_uri, aud = the token endpoint, a short life, and
 *   a jti never seen before (replays are refused).
 */
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import type { AuthClient, AuthStore } from './auth-store.js';
import { verifySecret } from './secrets.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGS = ['RS384', 'ES384'];
/** The longest client assertion life accepted (SMART Backend Services: no more than five minutes). */
const MAX_ASSERTION_SECONDS = 300;

/** An OAuth error response ({ error, error_description }). */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }
}

const remoteSets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function basicCredentials(header: string | undefined): [string, string] | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i < 0) return undefined;
  return [decodeURIComponent(text.slice(0, i)), decodeURIComponent(text.slice(i + 1))];
}

/**
 * Authenticate the client making a back-channel request. `endpoint` is this endpoint's URL, the
 * audience client assertions must name. Throws OAuthError invalid_client (401).
 */
export async function authenticateClient(auth: AuthStore, form: URLSearchParams, authorization: string | undefined, endpoint: string): Promise<AuthClient> {
  const invalid = (why: string) => new OAuthError(401, 'invalid_client', why);
  const basic = basicCredentials(authorization);
  if (basic) {
    const client = await auth.client(basic[0]);
    if (!client || client.authMethod !== 'client_secret_basic' || !(await verifySecret(basic[1], client.secretHash))) throw invalid('Client authentication failed');
    return client;
  }
  const assertion = form.get('client_assertion');
  if (assertion !== null) {
    if (form.get('client_assertion_type') !== ASSERTION_TYPE) throw invalid(`client_assertion_type must be ${ASSERTION_TYPE}`);
    let claimed: string | undefined;
    try {
      claimed = decodeJwt(assertion).iss;
    } catch {
      throw invalid('The client assertion is not a JWT');
    }
    const client = claimed ? await auth.client(claimed) : undefined;
    if (!client || client.authMethod !== 'private_key_jwt') throw invalid('Unknown client or not registered for private_key_jwt');
    const keys = client.jwksUri ? remoteKeys(client.jwksUri) : client.jwks ? createLocalJWKSet(client.jwks as JSONWebKeySet) : undefined;
    if (!keys) throw invalid('The client has no registered keys');
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, keys, { algorithms: ASSERTION_ALGS, issuer: client.clientId, subject: client.clientId, audience: endpoint, requiredClaims: ['exp', 'jti'], clockTolerance: 30 }));
    } catch (error) {
      throw invalid(`The client assertion was refused: ${(error as Error).message}`);
    }
    const now = Math.floor(Date.now() / 1000);
    if (payload.exp! - now > MAX_ASSERTION_SECONDS) throw invalid('The client assertion must expire within five minutes');
    if (!(await auth.useAssertion(client.clientId, payload.jti!, payload.exp!))) throw invalid('The client assertion jti was used before');
    return client;
  }
  const clientId = form.get('client_id');
  const client = clientId ? await auth.client(clientId) : undefined;
  if (!client) throw invalid('Unknown client');
  if (client.authMethod !== 'none') throw invalid(`This client must authenticate with ${client.authMethod}`);
  return client;
}

function remoteKeys(uri: string) {
  let set = remoteSets.get(uri);
  if (!set) remoteSets.set(uri, (set = createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000 })));
  return set;
}
