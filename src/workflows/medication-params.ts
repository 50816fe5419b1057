/**
 * Inputs of the prescription and lab workflow operations ($apply, $approve-renewal, $pdf-link …):
 * given in the query string (`?subject=Patient/1`) or as a Parameters body, the body winning when
 * both name the same parameter. Errors are 400 OperationOutcomes naming the parameter.
 */
import type { Parameters, ParametersParameter, Resource } from 'fhir/r4.js';
import { badRequest, FhirError, gone, notFound } from '../fhir/outcome.js';
import type { Writer } from '../interactions/writer.js';

export interface OperationInput {
  body?: unknown;
  query: URLSearchParams;
}

export class OperationParams {
  private readonly params: ParametersParameter[];

  constructor(private readonly input: OperationInput) {
    const body = input.body as Parameters | undefined;
    if (body !== undefined && (typeof body !== 'object' || body === null || body.resourceType !== 'Parameters')) {
      throw badRequest('The operation body must be a Parameters resource');
    }
    this.params = body?.parameter ?? [];
  }

  /** A parameter's value as text (valueString, valueCode, valueUri, valueInteger…, valueReference.reference). */
  string(name: string): string | undefined {
    const p = this.params.find((x) => x.name === name);
    if (p) {
      if (p.valueReference?.reference) return p.valueReference.reference;
      for (const [k, v] of Object.entries(p)) if (k.startsWith('value') && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) return String(v);
      throw badRequest(`Parameter '${name}' has no simple value`, [`Parameters.parameter.where(name='${name}')`]);
    }
    const q = this.input.query.get(name);
    return q === null || q === '' ? undefined : q;
  }

  required(name: string): string {
    const v = this.string(name);
    if (v === undefined) throw badRequest(`Parameter '${name}' is required`, [name]);
    return v;
  }

  /** A reference parameter 'Type/id' of one of the given types. */
  reference(name: string, types: string[]): string | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const m = /^([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(v);
    if (!m || !types.includes(m[1]!)) throw badRequest(`Parameter '${name}' must be a reference ${types.map((t) => `${t}/[id]`).join(' or ')} (got '${v}')`, [name]);
    return v;
  }

  /** A positive integer parameter within [1, max]. */
  positiveInteger(name: string, max: number): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw badRequest(`Parameter '${name}' must be an integer from 1 to ${max} (got '${v}')`, [name]);
    return n;
  }
}

/** The current version of `Type/id` read in the writer's transaction (row-locked); 404/410 when missing. */
export async function loadForUpdate<T extends Resource>(w: Writer, reference: string, what = reference): Promise<{ resource: T; versionId: number }> {
  const [type, id] = reference.split('/') as [string, string];
  const current = await w.ctx.store.current(w.tx, type, id, true);
  if (!current) throw notFound(`${what} is not known`);
  if (current.deleted || current.content === null) throw gone(`${what} has been deleted`);
  return { resource: JSON.parse(current.content) as T, versionId: current.versionId };
}

/** A 422 business-rule OperationOutcome (a workflow precondition that does not hold). */
export function businessRule(diagnostics: string, expression?: string[]): FhirError {
  return new FhirError(422, { severity: 'error', code: 'business-rule', diagnostics, expression });
}

/** 'Type/id' of a reference to this type, also when absolute or versioned ('…/fhir/Type/id/_history/2'); else undefined. */
export function localReference(reference: string | undefined, type: string): string | undefined {
  const m = new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})(?:/_history/[^/]+)?$`).exec(reference ?? '');
  return m ? `${type}/${m[1]}` : undefined;
}
