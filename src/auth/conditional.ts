/**
 * Conditional writes (If-None-Exist, PUT/PATCH/DELETE [type]?query, conditional references such as
 * `Patient?identifier=…` inside a Bundle) match their condition against the whole tenant, and a
 * conditional create that finds a match returns it. Under a patient or query limit that would let
 * a token learn of — or get back — resources outside its reach, so they need unlimited rights on
 * the type (403 otherwise). Plain writes by id are checked by the write rule (policy.ts).
 */
import type { Request } from 'express';
import type { Access } from './access.js';
import type { Action } from './scopes.js';
import { isUnrestricted, typeAccess } from './type-access.js';

const ACTION: Record<string, Action> = { POST: 'c', PUT: 'u', PATCH: 'u', DELETE: 'd' };
const CONDITIONAL_REFERENCE = /"reference"\s*:\s*"[A-Za-z]+\?/;

interface BundleRequest {
  request?: { method?: unknown; url?: unknown; ifNoneExist?: unknown };
  resource?: unknown;
}

/** The conditional writes of a request: [type, action, what] for each. */
function conditionalWrites(req: Request, interaction: string, type: string | undefined, level: string): Array<[string, Action, string]> {
  const out: Array<[string, Action, string]> = [];
  const method = req.method.toUpperCase();
  if (type && ACTION[method]) {
    if (req.headers['if-none-exist'] !== undefined) out.push([type, 'c', 'If-None-Exist']);
    if (level === 'type' && method !== 'POST') out.push([type, ACTION[method]!, `conditional ${interaction}`]);
  }
  if ((interaction === 'transaction' || interaction === 'batch') && Buffer.isBuffer(req.body)) {
    let entries: BundleRequest[] = [];
    try {
      const bundle = JSON.parse(req.body.toString('utf8')) as { entry?: unknown };
      if (Array.isArray(bundle.entry)) entries = bundle.entry as BundleRequest[];
    } catch {
      return out; // not JSON: the handler answers 400
    }
    entries.forEach((e, i) => {
      const m = typeof e?.request?.method === 'string' ? e.request.method.toUpperCase() : '';
      const url = typeof e?.request?.url === 'string' ? e.request.url : '';
      const entryType = /^(?:.*\/)?([A-Z][A-Za-z]+)(?:[/?]|$)/.exec(url.replace(/^[a-z]+:\/\/[^/]+/i, ''))?.[1];
      if (!ACTION[m] || !entryType) return;
      const conditional = e.request?.ifNoneExist !== undefined || url.includes('?') || CONDITIONAL_REFERENCE.test(JSON.stringify(e.resource ?? {}));
      if (conditional) out.push([entryType, ACTION[m]!, `Bundle.entry[${i}] (conditional)`]);
    });
  }
  return out;
}

/** The first conditional write the token may not make, as a message; undefined when all are allowed. */
export function refusedConditional(access: Access, req: Request, interaction: string, type: string | undefined, level: string): string | undefined {
  for (const [t, action, what] of conditionalWrites(req, interaction, type, level)) {
    if (!isUnrestricted(typeAccess(access, t, action))) return `${what} on ${t} needs scopes not limited to a patient or a query`;
  }
  return undefined;
}
