/** Assertions on FHIR error responses. */
import { expect } from 'vitest';

/** The response is `status` with an OperationOutcome whose first issue is an error. */
export function expectOutcome(r: { status: number; body: any; text: string }, status: number): void {
  expect(r.status, r.text).toBe(status);
  expect(r.body?.resourceType, r.text).toBe('OperationOutcome');
  expect(r.body.issue[0].severity).toBe('error');
}
