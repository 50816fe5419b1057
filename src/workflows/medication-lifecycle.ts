/**
 * MedicationRequest status lifecycle, enforced as a write rule so it holds on every write path
 * (REST update/patch, transaction and batch entries, HL7 v2 RDE, workflows): an update that moves
 * `status` along an edge not in the table below is refused with 422 (business-rule) and nothing of
 * the write is kept.
 *
 *   draft    → active | cancelled
 *   active   → on-hold | completed | cancelled | stopped
 *   on-hold  → active | cancelled | stopped
 *   unknown  → any status (an order known from a feed that gave no status: the feed may tell later)
 *   any      → entered-in-error (a record-keeping correction, always allowed)
 *   completed, cancelled, stopped, entered-in-error: final (only → entered-in-error)
 *
 * Keeping the same status is always allowed (content edits). Creates may carry any status
 * (imports of historic prescriptions); deletes are not restricted.
 */
import type { MedicationRequest } from 'fhir/r4.js';
import { FhirError } from '../fhir/outcome.js';
import type { WriteChange, WriteRule } from '../interactions/write-rules.js';

type Status = MedicationRequest['status'];

export const MEDICATION_REQUEST_TRANSITIONS: Readonly<Record<Status, readonly Status[]>> = {
  draft: ['active', 'cancelled'],
  active: ['on-hold', 'completed', 'cancelled', 'stopped'],
  'on-hold': ['active', 'cancelled', 'stopped'],
  unknown: ['draft', 'active', 'on-hold', 'completed', 'cancelled', 'stopped'],
  completed: [],
  cancelled: [],
  stopped: [],
  'entered-in-error': [],
};

export function isAllowedTransition(from: Status, to: Status): boolean {
  if (from === to) return true;
  if (to === 'entered-in-error') return from !== 'entered-in-error';
  return MEDICATION_REQUEST_TRANSITIONS[from]?.includes(to) ?? true;
}

/** The 422 of a refused transition (also used by workflows that check before writing). */
export function transitionError(from: Status, to: Status): FhirError {
  const allowed = [...(MEDICATION_REQUEST_TRANSITIONS[from] ?? []), ...(from === 'entered-in-error' ? [] : ['entered-in-error'])];
  return new FhirError(422, {
    severity: 'error',
    code: 'business-rule',
    diagnostics: `MedicationRequest status cannot change from '${from}' to '${to}'; allowed from '${from}': ${allowed.length ? allowed.join(', ') : 'none (final status)'}`,
    expression: ['MedicationRequest.status'],
  });
}

export const medicationRequestLifecycle: WriteRule = {
  name: 'medication-request-lifecycle',
  types: ['MedicationRequest'],
  async apply(_writer, change: WriteChange) {
    if (change.action !== 'update' || !change.previous || !change.resource) return;
    const from = (change.previous as MedicationRequest).status;
    const to = (change.resource as MedicationRequest).status;
    if (!isAllowedTransition(from, to)) throw transitionError(from, to);
  },
};
