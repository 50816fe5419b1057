/**
 * OperationDefinitions of the prescription and lab-order operations, built in (not stored):
 * served at [base]/OperationDefinition/[id] and referenced from the CapabilityStatement, with
 * their url the address they are served at.
 */
import type { OperationDefinition } from 'fhir/r4.js';
import { operationDefinition, param as p, type OperationParam } from './operation-definitions.js';

/** Every one of these is a POST on an instance of `resource` that changes state. */
interface Spec {
  id: string;
  code: string;
  resource: string;
  description: string;
  parameter: OperationParam[];
}

const REASON = p('reason', 'in', 'string', 1, '1', 'Why the request is rejected (Task.statusReason.text)');
const TASK_OUT = p('return', 'out', 'Task', 1, '1', 'The updated Task');

export const PRESCRIPTION_OPERATIONS: Spec[] = [
  {
    id: 'ActivityDefinition-apply',
    code: 'apply',
    resource: 'ActivityDefinition',
    description: 'Applies a prescription template (kind MedicationRequest) to a patient: returns the MedicationRequest AND stores it as a draft (201, Location). Parameters in the query or a Parameters body.',
    parameter: [
      p('subject', 'in', 'string', 1, '1', 'Patient/[id] the prescription is for (must exist)'),
      p('practitioner', 'in', 'string', 0, '1', 'Practitioner/[id] or PractitionerRole/[id]: the requester'),
      p('encounter', 'in', 'string', 0, '1', 'Encounter/[id]'),
      p('return', 'out', 'MedicationRequest', 1, '1', 'The draft MedicationRequest, as stored'),
    ],
  },
  {
    id: 'MedicationRequest-pdf',
    code: 'pdf',
    resource: 'MedicationRequest',
    description: 'Renders the prescription as a PDF, stores it (Binary + DocumentReference + Provenance with its SHA-256, one transaction) and answers the PDF (application/pdf). Drafts and entered-in-error requests → 422.',
    parameter: [p('return', 'out', 'Binary', 1, '1', 'The PDF (sent as application/pdf)')],
  },
  {
    id: 'MedicationRequest-pdf-link',
    code: 'pdf-link',
    resource: 'MedicationRequest',
    description: 'A signed, expiring link [origin]/share/[token] to the newest printed PDF of the prescription (printed now if none).',
    parameter: [
      p('expires-in', 'in', 'integer', 0, '1', 'Seconds the link stays valid: 1 to 2592000 (30 days), default 86400'),
      p('url', 'out', 'uri', 1, '1', 'The link'),
      p('expires', 'out', 'instant', 1, '1', 'When it stops working'),
      p('binary', 'out', 'Reference', 1, '1', 'The Binary it serves'),
    ],
  },
  {
    id: 'MedicationRequest-pdf-link-revoke',
    code: 'pdf-link-revoke',
    resource: 'MedicationRequest',
    description: 'Revokes one share link of the prescription (token, or the whole link URL) or, without token, all of them; revoked links answer 410.',
    parameter: [p('token', 'in', 'string', 0, '1', 'The token or link URL to revoke'), p('revoked', 'out', 'integer', 1, '1', 'Links revoked now')],
  },
  {
    id: 'Task-approve-renewal',
    code: 'approve-renewal',
    resource: 'Task',
    description: 'Approves a renewal request Task: a new active MedicationRequest (priorPrescription → the focus) and the Task completed with it as output, in one transaction.',
    parameter: [p('practitioner', 'in', 'string', 0, '1', 'Practitioner/[id] approving (the new requester and Task.owner)'), TASK_OUT],
  },
  {
    id: 'Task-reject-renewal',
    code: 'reject-renewal',
    resource: 'Task',
    description: 'Rejects a renewal request Task: status rejected with statusReason.',
    parameter: [REASON, p('practitioner', 'in', 'string', 0, '1', 'Practitioner/[id] rejecting (Task.owner)'), TASK_OUT],
  },
  {
    id: 'Task-accept',
    code: 'accept',
    resource: 'Task',
    description: 'The owner of an order Task (referral, lab order) accepts it: requested/received → accepted.',
    parameter: [TASK_OUT],
  },
  {
    id: 'Task-reject',
    code: 'reject',
    resource: 'Task',
    description: 'The owner of an order Task rejects it with a reason: requested/received/accepted/ready → rejected.',
    parameter: [REASON, TASK_OUT],
  },
];

export function prescriptionOperationDefinition(spec: Spec, baseUrl: string): OperationDefinition {
  return operationDefinition({ ...spec, resource: [spec.resource], level: { system: false, type: false, instance: true }, affectsState: true }, baseUrl);
}
