/**
 * Small facts about Appointments shared by the booking rule, the operations, reminders and the
 * calendar feed: which statuses hold a slot, who the participants are, deterministic ids.
 */
import { createHash } from 'node:crypto';
import type { Appointment, Reference } from 'fhir/r4.js';

/** Statuses in which an Appointment holds its slots (they are busy). */
export const HOLDING_STATUSES: ReadonlySet<string> = new Set(['booked', 'pending', 'arrived', 'checked-in']);

export const CAREBRIDGE_SD = 'http://carebridge.example/fhir/StructureDefinition';

export function holdsSlots(appointment: Appointment | undefined): boolean {
  return appointment !== undefined && HOLDING_STATUSES.has(appointment.status);
}

/** The Slot ids an Appointment references ('Slot/1', or absolute …/Slot/1); anything else is refused. */
export function slotIds(appointment: Appointment | undefined): string[] {
  const ids = (appointment?.slot ?? []).map((ref) => refId(ref, 'Slot'));
  return [...new Set(ids.filter((id): id is string => id !== undefined))];
}

/** The id of a literal reference to the given type, else undefined. */
export function refId(ref: Reference | undefined, type: string): string | undefined {
  const m = /(?:^|\/)([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref?.reference ?? '');
  return m && m[1] === type ? m[2] : undefined;
}

/** Participants' actor references of the given types. */
export function actorsOf(appointment: Appointment, types: readonly string[]): Reference[] {
  return (appointment.participant ?? [])
    .map((p) => p.actor)
    .filter((a): a is Reference => a?.reference !== undefined && types.some((t) => refId(a, t) !== undefined));
}

export function patientOf(appointment: Appointment): Reference | undefined {
  return actorsOf(appointment, ['Patient'])[0];
}

/** A FHIR id (≤ 64 chars) derived from parts: the same parts always give the same id. */
export function deterministicId(prefix: string, ...parts: string[]): string {
  return `${prefix}-${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 40)}`;
}
