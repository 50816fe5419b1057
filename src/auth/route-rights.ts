/**
 * What each route of the FHIR router (ROUTES in src/http/fhir-router.ts, by its interaction code)
 * needs from the token's scopes — the table checkRoute (policy.ts) applies at dispatch. Every
 * interaction and operation in ROUTES must have a row: test/auth/route-rights.test.ts fails
 * otherwise, so a new operation cannot go live unchecked or silently administrator-only.
 *
 * A row lists needs; each need is one type (absent: the route's own type) and the actions of
 * which the scopes must grant at least one. Operations that touch several types list each: the
 * coarse check happens before the handler runs; what the handler then writes still passes the
 * write rule (policy.ts enforceWrite) with the same token, so compartments hold for every write.
 * For instance-level operations the instance itself must be within reach of the FIRST need on the
 * route's type (404 when it is another patient's), since operation handlers read the store directly.
 */
import type { Action } from './scopes.js';

export interface Need {
  /** The resource type; absent = the route's type (or the compartment search's type). */
  type?: string;
  /** Any one of these suffices. */
  actions: Action[];
}

/** Only the administrator (`admin`, or `system/*.*` without a query). */
export const ADMIN_ONLY = 'admin-only';

export type Rights = Need[] | typeof ADMIN_ONLY;

const own = (...actions: Action[]): Need => ({ actions });
const on = (type: string, ...actions: Action[]): Need => ({ type, actions });

export const ROUTE_RIGHTS: Readonly<Record<string, Rights>> = {
  // Interactions: http.html. capabilities (/metadata) is public and never checked.
  capabilities: [],
  read: [own('r')],
  vread: [own('r')],
  'history-instance': [own('r')],
  'history-type': [own('r')],
  'history-system': [own('r')],
  'search-type': [own('s')],
  'search-system': [own('s')],
  create: [own('c')],
  update: [own('u', 'c')],
  patch: [own('u')],
  delete: [own('d')],
  // Each entry is checked again as its own interaction (transaction.ts).
  transaction: [own('c', 'r', 'u', 'd', 's')],
  batch: [own('c', 'r', 'u', 'd', 's')],
  // Validation of a resource one could write.
  $validate: [own('c', 'u')],
  // Rebuilding search indexes touches every resource of every patient.
  $reindex: ADMIN_ONLY,

  // Scheduling (src/workflows/appointments-routes.ts).
  $find: [on('Appointment', 's'), on('Slot', 's')],
  $book: [on('Appointment', 'c')],
  '$generate-slots': [on('Schedule', 'r'), on('Slot', 'c')],
  // A feed URL is a lasting read credential for the subject's appointments.
  '$calendar-token': [own('r'), on('Appointment', 's')],

  // Prescriptions, renewals, referrals (src/workflows/medication-routes.ts).
  $apply: [on('ActivityDefinition', 'r'), on('MedicationRequest', 'c')],
  $pdf: [on('MedicationRequest', 'r')],
  // A share link hands the PDF to whoever holds it: reading the prescription is the minimum.
  '$pdf-link': [on('MedicationRequest', 'r')],
  '$pdf-link-revoke': [on('MedicationRequest', 'r')],
  '$approve-renewal': [on('Task', 'u'), on('MedicationRequest', 'c')],
  '$reject-renewal': [on('Task', 'u')],
  $accept: [on('Task', 'u')],
  $reject: [on('Task', 'u')],

  // Subscriptions (backport IG; src/subscriptions/routes.ts): like reading the Subscription.
  $status: [on('Subscription', 'r')],
  $events: [on('Subscription', 'r')],
  '$get-ws-binding-token': [on('Subscription', 'r')],
};

/**
 * Records an operation files as the server, not as the caller: once the operation's needs passed,
 * writes of these types by its handler are not checked against the caller's scopes (a patient
 * printing their prescription cannot create a Binary, but the printed copy CareBridge keeps is
 * the server's doing). Only these types, only within that request.
 */
export const SERVER_RECORDS: Readonly<Record<string, readonly string[]>> = {
  // The printed PDF, kept as Binary + DocumentReference, with its Provenance.
  $pdf: ['Binary', 'DocumentReference', 'Provenance'],
  '$pdf-link': ['Binary', 'DocumentReference', 'Provenance'],
  // The hashed feed token, kept as a Basic about the subject.
  '$calendar-token': ['Basic'],
};

export function rightsOf(interaction: string): Rights | undefined {
  return Object.hasOwn(ROUTE_RIGHTS, interaction) ? ROUTE_RIGHTS[interaction] : undefined;
}
