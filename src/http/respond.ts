/** Rendering interaction results and errors as HTTP responses (http.html#return). */
import type { Request, Response } from 'express';
import { STATUS_CODES } from 'node:http';
import { FhirError, outcome } from '../fhir/outcome.js';
import type { InteractionResult } from '../interactions/context.js';
import { etag, versionUrl } from '../interactions/context.js';
import type { ReturnPreference } from '../interactions/transaction.js';
import { FHIR_JSON } from './negotiate.js';

export function preferences(req: Request): { return?: ReturnPreference; strict: boolean } {
  const raw = req.headers.prefer;
  const header = Array.isArray(raw) ? raw.join(',') : raw ?? '';
  const ret = /(?:^|[;,\s])return=(minimal|representation|OperationOutcome)/i.exec(header)?.[1];
  const normalized = ret?.toLowerCase() === 'operationoutcome' ? 'OperationOutcome' : (ret?.toLowerCase() as ReturnPreference | undefined);
  return { return: normalized, strict: /(?:^|[;,\s])handling=strict/i.test(header) };
}

function sendBody(res: Response, status: number, body: unknown): void {
  res.status(status).type(FHIR_JSON).send(typeof body === 'string' ? body : JSON.stringify(body));
}

/** Send a result; for writes, Prefer: return= picks the body (default: the resource). */
export function respond(req: Request, res: Response, result: InteractionResult, baseUrl: string, isWrite = false): void {
  const v = result.version;
  for (const [k, value] of Object.entries(result.headers ?? {})) res.setHeader(k, value);
  if (v) {
    res.setHeader('ETag', etag(v.versionId));
    res.setHeader('Last-Modified', new Date(v.lastUpdated).toUTCString());
    if (result.created) res.setHeader('Location', versionUrl(baseUrl, v));
    else if (isWrite && !v.deleted) res.setHeader('Content-Location', versionUrl(baseUrl, v));
  }
  if (result.raw) {
    res.status(result.status).type(result.raw.contentType);
    if (result.raw.filename) res.setHeader('Content-Disposition', `inline; filename="${result.raw.filename}"`);
    res.send(result.raw.data);
    return;
  }
  const prefer = isWrite ? preferences(req).return ?? 'representation' : 'representation';
  if (result.body === undefined || prefer === 'minimal') {
    if (prefer === 'OperationOutcome') {
      sendBody(res, result.status === 204 ? 200 : result.status, outcome([{ severity: 'information', code: 'informational', diagnostics: STATUS_CODES[result.status] ?? 'OK' }]));
      return;
    }
    res.status(result.status).end();
    return;
  }
  if (prefer === 'OperationOutcome') {
    sendBody(res, result.status, outcome([{ severity: 'information', code: 'informational', diagnostics: `${STATUS_CODES[result.status]}${v ? `: ${v.resourceType}/${v.id} version ${v.versionId}` : ''}` }]));
    return;
  }
  sendBody(res, result.status, result.body);
}

export function respondError(res: Response, error: FhirError): void {
  for (const [k, value] of Object.entries(error.headers)) res.setHeader(k, value);
  sendBody(res, error.status, error.outcome);
}

export function internalError(res: Response): void {
  respondError(res, new FhirError(500, { severity: 'fatal', code: 'exception', diagnostics: 'Internal server error; the request id in the X-Request-Id header identifies it in the server log' }));
}
