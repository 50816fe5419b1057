/**
 * The authorization endpoint (RFC 6749 §4.1, SMART App Launch 2.0): GET shows the sign-in form,
 * POST step=login checks the user (password, TOTP when the user has one, lock-out after repeated
 * failures), then a consent page that also picks the patient for launch/patient when the user is
 * a practitioner; POST step=consent redirects back with a single-use code.
 *
 * Between the two POSTs the request travels as a short-lived ticket signed with the tenant's key,
 * so the server keeps no session. Errors about the client or redirect_uri are shown on a page (never
 * redirected to an unregistered address); all later errors go back to the app (error=...&state=...).
 */
import express, { type Request, type Response } from 'express';
import { jwtVerify, SignJWT } from 'jose';
import { verify as verifyTotp } from 'otplib';
import { AuthStore, type AuthClient, type AuthUser } from './auth-store.js';
import { AUTH_PATHS } from './endpoints.js';
import { formOf, oauth, queryOf, type AuthTenant, type TenantResolver } from './http-util.js';
import { SIGNING_ALG, signingKey } from './keys.js';
import { consentPage, errorPage, loginPage } from './pages.js';
import { noLoginAudit, type LoginAuditor } from './login-audit.js';
import { allowedScopes, splitScopes } from './scopes.js';
import { hashSecret, newToken, verifySecret } from './secrets.js';

export const AUTHORIZE_PATH = AUTH_PATHS.authorize;
export const MAX_FAILED_LOGINS = 5;
export const LOCK_MINUTES = 15;
const TICKET_SECONDS = 600;
const PARAMS = ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'aud', 'code_challenge', 'code_challenge_method', 'launch', 'nonce'] as const;

export interface AuthorizeRequest {
  params: Record<string, string>;
  client: AuthClient;
  scope: string[];
  launch?: { patient?: string; encounter?: string };
}

/** Shown on a page: the app cannot be told (unknown client, unregistered redirect_uri). */
class PageError extends Error {}
/** Sent back to the app's redirect_uri. */
class RedirectError extends Error {
  constructor(
    readonly code: string,
    description: string,
  ) {
    super(description);
  }
}

function pick(source: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of PARAMS) {
    const v = source.get(k);
    if (v !== null) out[k] = v;
  }
  return out;
}

async function validate(t: AuthTenant, params: Record<string, string>): Promise<AuthorizeRequest> {
  const auth = new AuthStore(t.store);
  const client = params.client_id ? await auth.client(params.client_id) : undefined;
  if (!client || client.kind === 'backend') throw new PageError('Unknown client');
  if (!params.redirect_uri || !client.redirectUris.includes(params.redirect_uri)) throw new PageError('The redirect_uri is not registered for this client');
  if (params.response_type !== 'code') throw new RedirectError('unsupported_response_type', 'response_type must be code');
  if (params.aud?.replace(/\/+$/, '') !== t.baseUrl) throw new RedirectError('invalid_request', `aud must be this FHIR server, ${t.baseUrl}`);
  if (params.code_challenge !== undefined || client.kind === 'public') {
    if (params.code_challenge_method !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(params.code_challenge ?? '')) {
      throw new RedirectError('invalid_request', 'PKCE with code_challenge_method=S256 is required');
    }
  }
  const scope = allowedScopes(splitScopes(params.scope), splitScopes(client.scope));
  if (scope.length === 0) throw new RedirectError('invalid_scope', 'None of the requested scopes is registered for this client');
  let launch: AuthorizeRequest['launch'];
  if (params.launch !== undefined) {
    launch = await auth.launch(params.launch);
    if (!launch) throw new RedirectError('invalid_request', 'The launch parameter is unknown or expired');
  } else if (scope.includes('launch')) {
    throw new RedirectError('invalid_request', 'The launch scope needs a launch parameter (EHR launch)');
  }
  return { params, client, scope, launch };
}

function redirectBack(res: Response, params: Record<string, string>, fields: Record<string, string>): void {
  const url = new URL(params.redirect_uri!);
  for (const [k, v] of Object.entries(fields)) url.searchParams.set(k, v);
  if (params.state !== undefined) url.searchParams.set('state', params.state);
  res.redirect(302, url.toString());
}

/** Run a step; PageError → 400 page, RedirectError → back to the app. */
async function step(res: Response, params: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof PageError) res.status(400).type('html').send(errorPage(error.message));
    else if (error instanceof RedirectError) redirectBack(res, params, { error: error.code, error_description: error.message });
    else throw error;
  }
}

let dummyHash: Promise<string> | undefined;
const unknownUserHash = () => (dummyHash ??= hashSecret(newToken()));

/** A refused sign-in: what the page says, and (for the audit trail only) why and whose account. */
interface Refusal {
  message: string;
  why: string;
  user?: AuthUser;
}

/** Check the credentials; the message is the same for an unknown user and a wrong password. */
async function signIn(auth: AuthStore, form: URLSearchParams): Promise<AuthUser | Refusal> {
  const user = await auth.user({ username: form.get('username') ?? '' });
  const refused = 'The username, password or code is not right';
  if (!user) {
    // As slow as a wrong password, so timing does not tell which usernames exist.
    await verifySecret(form.get('password') ?? '', await unknownUserHash());
    return { message: refused, why: 'unknown username' };
  }
  if (user.lockedUntil && user.lockedUntil > new Date()) return { message: `This account is locked after ${MAX_FAILED_LOGINS} failed sign-ins; try again later`, why: 'account locked', user };
  let ok = await verifySecret(form.get('password') ?? '', user.passwordHash);
  if (ok && user.totpSecret) {
    const code = form.get('totp') ?? '';
    ok = /^\d{6}$/.test(code) && (await verifyTotp({ secret: user.totpSecret, token: code, epochTolerance: 30 })).valid;
  }
  if (!ok) {
    await auth.loginFailed(user.id, MAX_FAILED_LOGINS, LOCK_MINUTES);
    return { message: refused, why: user.totpSecret ? 'wrong password or TOTP code' : 'wrong password', user };
  }
  await auth.loginSucceeded(user.id);
  return user;
}

/** The patient of the launch: from the EHR launch, the user's own, or to be picked (undefined). */
function launchPatient(request: AuthorizeRequest, user: AuthUser): string | undefined {
  if (user.patientId) {
    if (request.launch?.patient && request.launch.patient !== user.patientId) throw new RedirectError('access_denied', 'This user cannot open another patient’s record');
    return user.patientId;
  }
  return request.launch?.patient;
}

export function authorizeRouter(tenantOf: TenantResolver, audit: LoginAuditor = noLoginAudit): express.Router {
  const router = express.Router();
  router.get(
    AUTHORIZE_PATH,
    oauth(async (req, res) => {
      const t = await tenantOf(req);
      const params = pick(queryOf(req));
      await step(res, params, async () => {
        const request = await validate(t, params);
        res.type('html').send(loginPage(request));
      });
    }),
  );
  router.post(
    AUTHORIZE_PATH,
    oauth(async (req: Request, res: Response) => {
      const t = await tenantOf(req);
      const form = formOf(req);
      const key = await signingKey(t.store);
      if (form.get('step') === 'consent') {
        let ticket: { params: Record<string, string>; user: string; patient?: string; pick: boolean };
        try {
          ticket = (await jwtVerify(form.get('ticket') ?? '', key.publicKey, { algorithms: [SIGNING_ALG], typ: 'authz-ticket' })).payload as typeof ticket;
        } catch {
          res.status(400).type('html').send(errorPage('This sign-in has expired; start again from the app'));
          return;
        }
        await step(res, ticket.params, async () => {
          const request = await validate(t, ticket.params);
          if (form.get('decision') !== 'allow') throw new RedirectError('access_denied', 'The user did not allow access');
          let patient = ticket.patient;
          if (ticket.pick) {
            patient = (form.get('patient') ?? '').trim();
            if (!patient || !(await t.store.current(t.store.db, 'Patient', patient))) {
              res.status(400).type('html').send(consentPage(request, form.get('ticket')!, true, 'There is no patient with that id'));
              return;
            }
          }
          const code = await new AuthStore(t.store).insertCode({
            clientId: request.client.clientId,
            userId: ticket.user,
            redirectUri: request.params.redirect_uri!,
            scope: request.scope.join(' '),
            codeChallenge: request.params.code_challenge,
            patient,
            encounter: request.launch?.encounter,
            nonce: request.params.nonce,
          });
          redirectBack(res, request.params, { code });
        });
        return;
      }
      const params = pick(form);
      await step(res, params, async () => {
        const request = await validate(t, params);
        const user = await signIn(new AuthStore(t.store), form);
        const clientId = request.client.clientId;
        if ('message' in user) {
          await audit(req, t, { success: false, clientId, userId: user.user?.id, fhirUser: user.user?.fhirUser, failure: `Sign-in refused: ${user.why}` });
          res.status(401).type('html').send(loginPage(request, user.message));
          return;
        }
        await audit(req, t, { success: true, clientId, userId: user.id, fhirUser: user.fhirUser });
        const patient = launchPatient(request, user);
        const pick = patient === undefined && request.scope.includes('launch/patient');
        const ticket = await new SignJWT({ params, user: user.id, patient, pick })
          .setProtectedHeader({ alg: SIGNING_ALG, typ: 'authz-ticket' })
          .setExpirationTime(`${TICKET_SECONDS}s`)
          .sign(key.privateKey);
        res.type('html').send(consentPage(request, ticket, pick));
      });
    }),
  );
  return router;
}
