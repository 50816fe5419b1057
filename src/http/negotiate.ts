/** Content negotiation (http.html#mime-type): JSON only; XML and others are refused clearly. */
import type { Request } from 'express';
import { FhirError } from '../fhir/outcome.js';
import { parseJson } from '../interactions/resource-json.js';

const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json+fhir']);
const FORMAT_ALIASES = new Set(['json', 'application/json', 'application/fhir+json', 'application/json+fhir']);

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const NUL_ESCAPE = /(?<!\\)(?:\\\\)*\\u0000/;

function mediaType(header: string | undefined): string | undefined {
  return header?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/** 406 unless the client accepts FHIR JSON (by Accept or _format), or `also` (a route's own media type, e.g. application/pdf). */
export function checkAcceptable(req: Request, also?: string): void {
  const format = typeof req.query._format === 'string' ? req.query._format.toLowerCase() : undefined;
  if (format !== undefined) {
    if (FORMAT_ALIASES.has(format)) return;
    throw new FhirError(406, { severity: 'error', code: 'not-supported', diagnostics: `_format '${format}' is not supported; this server speaks application/fhir+json`, expression: ['_format'] });
  }
  const accept = req.headers.accept;
  if (!accept) return;
  const ok = accept.split(',').some((part) => {
    const t = mediaType(part);
    return t === undefined || t === '*/*' || t === 'application/*' || JSON_TYPES.has(t) || t === also;
  });
  if (!ok) throw new FhirError(406, { severity: 'error', code: 'not-supported', diagnostics: `None of the accepted types (${accept}) is supported; this server speaks application/fhir+json` });
}

export type BodyKind = 'fhir' | 'json-patch';

/** Parse the request body; 415 for a content type we do not read, 400 for malformed JSON. */
export function readBody(req: Request, allowed: BodyKind[] = ['fhir']): { kind: BodyKind; value: unknown } {
  const type = mediaType(req.headers['content-type']);
  let kind: BodyKind | undefined;
  if (type && JSON_TYPES.has(type)) kind = 'fhir';
  else if (type === 'application/json-patch+json') kind = 'json-patch';
  if (!kind || !allowed.includes(kind)) {
    const expected = allowed.map((k) => (k === 'fhir' ? 'application/fhir+json' : 'application/json-patch+json')).join(' or ');
    throw new FhirError(415, { severity: 'error', code: 'not-supported', diagnostics: `Content-Type '${type ?? '(none)'}' is not supported here; send ${expected}` });
  }
  const raw = req.body;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : typeof raw === 'string' ? raw : '';
  if (text.trim() === '') throw new FhirError(400, { severity: 'error', code: 'required', diagnostics: 'The request body is empty' });
  // FHIR strings may not contain U+0000 and PostgreSQL text cannot store it: refuse it up front
  // (a raw NUL byte, or a \u0000 escape not itself preceded by an escaped backslash).
  if (text.includes('\0') || NUL_ESCAPE.test(text)) {
    throw new FhirError(400, { severity: 'error', code: 'invalid', diagnostics: 'The request body contains a NUL character (U+0000), which FHIR strings may not contain' });
  }
  return { kind, value: parseJson(text) };
}
