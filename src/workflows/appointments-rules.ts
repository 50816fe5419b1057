/**
 * The booking rules, enforced on every write path (REST, transaction/batch Bundles, HL7 v2 SIU,
 * $book) because they run inside the Writer, in the write's database transaction:
 *
 * - An Appointment in a holding status (booked, pending, arrived, checked-in) takes its Slots: each
 *   must exist (else 422) and be free with no other holding Appointment (else 409); it becomes busy.
 * - Cancelling (cancelled, noshow, …), deleting, or dropping a slot from the list frees it; a new
 *   slot list takes the new ones (reschedule) — all in the same transaction as the Appointment.
 * - Check-in (status arrived or checked-in) creates the visit's Encounter once: its id is derived
 *   from the Appointment id, so repeated or parallel check-ins find it instead of adding another.
 *
 * Concurrency: each Slot's row is locked (SELECT … FOR UPDATE) in id order before it is examined,
 * so two bookings of one slot serialise and the second sees it busy. Updates of one Appointment
 * are already serialised by the Writer's lock on the Appointment row.
 */
import type { Appointment, Encounter, Slot } from 'fhir/r4.js';
import { conflict, unprocessable } from '../fhir/outcome.js';
import { findMatches } from '../interactions/matching.js';
import type { WriteChange, WriteRule } from '../interactions/write-rules.js';
import type { Writer } from '../interactions/writer.js';
import { actorsOf, deterministicId, HOLDING_STATUSES, holdsSlots, patientOf, slotIds } from './appointments-model.js';

const CHECKED_IN: ReadonlySet<string> = new Set(['arrived', 'checked-in']);

export const appointmentBookingRule: WriteRule = {
  name: 'appointment-booking',
  types: ['Appointment'],
  async apply(writer: Writer, change: WriteChange): Promise<void> {
    const next = change.resource as Appointment | undefined;
    const previous = change.previous as Appointment | undefined;
    const wanted = holdsSlots(next) ? slotIds(next) : [];
    const held = holdsSlots(previous) ? slotIds(previous) : [];
    const take = wanted.filter((id) => !held.includes(id));
    const release = held.filter((id) => !wanted.includes(id));
    // One global order of slot locks: two reschedules crossing each other cannot deadlock.
    for (const id of [...take, ...release].sort()) {
      if (take.includes(id)) await takeSlot(writer, id, change.id);
      else await releaseSlot(writer, id);
    }
    if (next && CHECKED_IN.has(next.status)) await ensureEncounter(writer, next, change.id);
  },
};

/** The Encounter a check-in creates: one per Appointment. */
export function encounterIdFor(appointmentId: string): string {
  return deterministicId('visit', 'Appointment', appointmentId);
}

async function lockedSlot(writer: Writer, id: string): Promise<Slot | undefined> {
  const current = await writer.ctx.store.current(writer.tx, 'Slot', id, true);
  return current && !current.deleted && current.content ? (JSON.parse(current.content) as Slot) : undefined;
}

async function takeSlot(writer: Writer, slotId: string, appointmentId: string): Promise<void> {
  const slot = await lockedSlot(writer, slotId);
  if (!slot) throw unprocessable(`Appointment.slot: Slot/${slotId} does not exist`, ['Appointment.slot']);
  if (slot.status !== 'free') throw conflict(`Slot/${slotId} is not free (status ${slot.status})`, ['Appointment.slot']);
  // A slot marked free by hand while an Appointment still holds it is taken too.
  const holders = await findMatches(writer.tx, writer.ctx.store.schema, 'Appointment', `slot=Slot/${slotId}&status=${[...HOLDING_STATUSES].join(',')}`, 2, writer.registry);
  if (holders.some((h) => h.id !== appointmentId)) throw conflict(`Slot/${slotId} is held by another Appointment`, ['Appointment.slot']);
  await writer.update({ ...slot, status: 'busy' } as Slot, slotId);
}

async function releaseSlot(writer: Writer, slotId: string): Promise<void> {
  const slot = await lockedSlot(writer, slotId);
  // Blocked or deleted slots stay as they are: only the busy mark this rule set is undone.
  if (slot?.status === 'busy') await writer.update({ ...slot, status: 'free' } as Slot, slotId);
}

async function ensureEncounter(writer: Writer, appointment: Appointment, appointmentId: string): Promise<void> {
  const id = encounterIdFor(appointmentId);
  if (await writer.ctx.store.current(writer.tx, 'Encounter', id)) return;
  const encounter: Encounter = {
    resourceType: 'Encounter',
    status: 'arrived',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
    ...(appointment.serviceType?.length ? { serviceType: appointment.serviceType[0] } : {}),
    ...(patientOf(appointment) ? { subject: patientOf(appointment) } : {}),
    participant: actorsOf(appointment, ['Practitioner', 'PractitionerRole', 'RelatedPerson']).map((individual) => ({ individual })),
    appointment: [{ reference: `Appointment/${appointmentId}` }],
    // The arrival time: the practitioner's queue is ordered by it (Encounter?…&_sort=date).
    period: { start: writer.now },
    location: actorsOf(appointment, ['Location']).map((location) => ({ location, status: 'active' as const })),
  };
  if (encounter.participant!.length === 0) delete encounter.participant;
  if (encounter.location!.length === 0) delete encounter.location;
  await writer.create(encounter, { id });
}
