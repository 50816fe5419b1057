/** The OperationDefinitions of the scheduling operations (built in: operation-definitions.ts). */
import type { OperationDefinition } from 'fhir/r4.js';
import { operationDefinition, param as p, type OperationSpec } from './operation-definitions.js';

const SPECS: OperationSpec[] = [
  {
    id: 'Appointment-find',
    code: 'find',
    resource: ['Appointment'],
    level: { system: false, type: true, instance: false },
    affectsState: false,
    description: 'Free slots as proposed Appointments (Argonaut Scheduling style). GET or POST with query parameters; paged by _cursor.',
    parameter: [
      p('start', 'in', 'dateTime', 1, '1', 'Earliest slot start (date or dateTime with zone)'),
      p('end', 'in', 'dateTime', 0, '1', 'Slots start before this (default start + 14 days); must be after start'),
      p('practitioner', 'in', 'string', 0, '1', 'Practitioner/[id] (or [id]): schedules whose actor is the practitioner or one of their PractitionerRoles', { searchType: 'reference' }),
      p('location', 'in', 'string', 0, '1', 'Location/[id] (or [id])', { searchType: 'reference' }),
      p('service-type', 'in', 'string', 0, '1', 'Slot.serviceType as a token search value (system|code)', { searchType: 'token' }),
      p('patient', 'in', 'string', 0, '1', 'Patient/[id] added as a participant of each proposal', { searchType: 'reference' }),
      p('_count', 'in', 'integer', 0, '1', 'Page size'),
      p('return', 'out', 'Bundle', 1, '1', 'searchset Bundle of Appointments with status proposed, each with its Slot'),
    ],
  },
  {
    id: 'Appointment-book',
    code: 'book',
    resource: ['Appointment'],
    level: { system: false, type: true, instance: false },
    affectsState: true,
    description: 'Books an Appointment (usually one $find proposed): status becomes booked and its slots busy in the same transaction; 409 if a slot is taken, 422 if a slot does not exist.',
    parameter: [
      p('appt-resource', 'in', 'Appointment', 1, '1', 'The Appointment to book (or POST the Appointment itself as the body)'),
      p('return', 'out', 'Bundle', 1, '1', 'searchset Bundle with the booked Appointment'),
    ],
  },
  {
    id: 'Schedule-generate-slots',
    code: 'generate-slots',
    resource: ['Schedule'],
    level: { system: false, type: true, instance: true },
    affectsState: true,
    description: 'Generates the missing free Slots of one Schedule (instance) or of every active Schedule (type) from the actor availability over SLOT_HORIZON_DAYS. Idempotent.',
    parameter: [
      p('created', 'out', 'integer', 1, '1', 'Slots created by this run'),
      p('existing', 'out', 'integer', 1, '1', 'Slots in the horizon that already existed'),
    ],
  },
  {
    id: 'calendar-token',
    code: 'calendar-token',
    resource: ['Practitioner', 'Patient'],
    level: { system: false, type: false, instance: true },
    affectsState: true,
    description: 'POST: a new secret iCal feed URL for the practitioner or patient (the token is stored hashed). DELETE: revokes every feed URL of that practitioner or patient.',
    parameter: [
      p('url', 'out', 'uri', 1, '1', 'The feed URL, /calendar/[token].ics'),
      p('token', 'out', 'string', 1, '1', 'The token (shown once)'),
    ],
  },
];

/** Ids of the built-in OperationDefinitions of this workflow. */
export const APPOINTMENT_OPERATION_IDS: readonly string[] = SPECS.map((s) => s.id);

/** The OperationDefinition with this id, with its url under the given FHIR base; undefined if not built in. */
export function builtinOperationDefinition(id: string, baseUrl: string): OperationDefinition | undefined {
  const spec = SPECS.find((s) => s.id === id);
  return spec && operationDefinition(spec, baseUrl);
}

/** The relative reference the router puts in the CapabilityStatement (made absolute there). */
export const definitionRef = (id: string) => `OperationDefinition/${id}`;
