/**
 * Sign-ins and token requests on the audit trail: the authorization endpoints (authorize-router.ts
 * sign-in step, token-router.ts grants) report each success and refusal here, and it becomes a
 * BALP login AuditEvent in the tenant's store (src/audit/record.ts recordLoginAudit; nothing with
 * AUDIT=off). Recording must not change the answer a user gets, so a failure to record is logged.
 */
import type { Request } from 'express';
import type { Config } from '../config.js';
import { recordLoginAudit } from '../audit/record.js';
import type { Tenants } from '../store/tenants.js';
import { AuthStore } from './auth-store.js';
import type { AuthTenant } from './http-util.js';

export interface LoginOutcome {
  success: boolean;
  /** The client asking (as claimed by a refused request, as authenticated by a granted one). */
  clientId?: string;
  userId?: string;
  fhirUser?: string;
  /** Why it was refused (never the password or code). */
  failure?: string;
}

export type LoginAuditor = (req: Request, t: AuthTenant, outcome: LoginOutcome) => Promise<void>;

export const noLoginAudit: LoginAuditor = async () => {};

export function loginAuditor(deps: { config: Pick<Config, 'audit' | 'baseUrl'>; tenants: Tenants }): LoginAuditor {
  return async (req, t, o) => {
    try {
      await recordLoginAudit(deps, {
        tenant: new AuthStore(t.store).tenant,
        baseUrl: t.baseUrl,
        success: o.success,
        access: o.clientId ? { clientId: o.clientId, userId: o.userId, fhirUser: o.fhirUser } : undefined,
        ip: req.ip,
        failure: o.failure,
      });
    } catch (error) {
      req.log?.error({ err: error }, 'could not record the AuditEvent of a sign-in or token request');
    }
  };
}
