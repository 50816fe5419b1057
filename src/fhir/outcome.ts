/**
 * OperationOutcome construction and the error type every layer throws.
 * The HTTP layer turns a FhirError into its status code and OperationOutcome body;
 * nothing below it knows about HTTP beyond the numeric status the spec assigns.
 */
import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4.js';

export type IssueSeverity = OperationOutcomeIssue['severity'];
export type IssueCode = OperationOutcomeIssue['code'];

export interface Issue {
  severity: IssueSeverity;
  code: IssueCode;
  diagnostics: string;
  expression?: string[];
}

export function outcome(issues: Issue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((i) => ({
      severity: i.severity,
      code: i.code,
      diagnostics: i.diagnostics,
      ...(i.expression?.length ? { expression: i.expression } : {}),
    })),
  };
}

export function informational(diagnostics: string): OperationOutcome {
  return outcome([{ severity: 'information', code: 'informational', diagnostics }]);
}

/** An error with the HTTP status the FHIR spec assigns to it and the issues to report. */
export class FhirError extends Error {
  readonly status: number;
  readonly issues: Issue[];
  readonly headers: Record<string, string>;

  constructor(status: number, issues: Issue[] | Issue, headers: Record<string, string> = {}) {
    const list = Array.isArray(issues) ? issues : [issues];
    super(list.map((i) => i.diagnostics).join('; '));
    this.status = status;
    this.issues = list;
    this.headers = headers;
  }

  get outcome(): OperationOutcome {
    return outcome(this.issues);
  }

  /** Say where the error happened (e.g. which Bundle entry), keeping the element paths. */
  withContext(prefix: string, expression?: string): FhirError {
    return new FhirError(
      this.status,
      this.issues.map((i) => ({
        ...i,
        diagnostics: `${prefix}: ${i.diagnostics}`,
        expression: expression ? [expression, ...(i.expression ?? [])] : i.expression,
      })),
      this.headers,
    );
  }
}

const err = (status: number, code: IssueCode) => (diagnostics: string, expression?: string[]) =>
  new FhirError(status, { severity: 'error', code, diagnostics, expression });

export const badRequest = err(400, 'invalid');
export const notFound = err(404, 'not-found');
export const gone = err(410, 'deleted');
export const conflict = err(409, 'conflict');
export const preconditionFailed = err(412, 'conflict');
export const unprocessable = err(422, 'processing');
export const notSupported = err(501, 'not-supported');
export const tooCostly = err(400, 'too-costly');
