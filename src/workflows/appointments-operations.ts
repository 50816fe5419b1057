/**
 * Appointment/$find and Appointment/$book in the style of the Argonaut Scheduling IG:
 * - $find lists free Slots as proposed Appointments (a searchset Bundle, keyset-paged like any
 *   search: the next link carries the Slot search's _cursor).
 * - $book writes the Appointment (status booked) through the Writer, so the booking rule
 *   (appointments-rules.ts) takes the slot in the same transaction: 409 when it is taken.
 */
import { randomUUID } from 'node:crypto';
import type { Appointment, AppointmentParticipant, Bundle, BundleEntry, Parameters, Schedule, Slot } from 'fhir/r4.js';
import { badRequest } from '../fhir/outcome.js';
import type { InteractionContext, InteractionResult } from '../interactions/context.js';
import { readClient } from '../interactions/context.js';
import { findMatches } from '../interactions/matching.js';
import { searchResources } from '../interactions/search.js';
import { writeInTransaction } from '../interactions/write-result.js';
import { searchRegistryOf } from '../search/tenant-params.js';
import { slotIds } from './appointments-model.js';

const DEFAULT_FIND_DAYS = 14;
const MAX_SCHEDULES = 1000;
const FIND_PARAMS = new Set(['practitioner', 'location', 'service-type', 'start', 'end', 'patient', '_count', '_cursor']);

/** A dateTime parameter (date or dateTime with zone); 400 otherwise. */
function instantParam(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ok = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(value);
  const t = ok ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(t)) throw badRequest(`${name}: '${value}' is not a FHIR date or dateTime with time zone`, [name]);
  return t;
}

function referenceParam(type: string, value: string): string {
  const ref = value.includes('/') ? value : `${type}/${value}`;
  if (!new RegExp(`^${type}/[A-Za-z0-9\\-.]{1,64}$`).test(ref)) throw badRequest(`'${value}' is not a ${type} reference`);
  return ref;
}

/** Schedules whose actor is the practitioner (directly or through one of their PractitionerRoles) and/or the location. */
async function scheduleFilter(ctx: InteractionContext, params: URLSearchParams): Promise<string[] | undefined> {
  const client = readClient(ctx);
  const registry = searchRegistryOf(ctx.store);
  const schedulesOf = async (actors: string[]) =>
    actors.length === 0
      ? []
      : (await findMatches(client, ctx.store.schema, 'Schedule', `actor=${actors.join(',')}`, MAX_SCHEDULES, registry))
          .filter((s) => (JSON.parse(s.content!) as Schedule).active !== false)
          .map((s) => s.id);
  let ids: string[] | undefined;
  const practitioner = params.get('practitioner');
  if (practitioner) {
    const ref = referenceParam('Practitioner', practitioner);
    const roles = await findMatches(client, ctx.store.schema, 'PractitionerRole', `practitioner=${ref}`, MAX_SCHEDULES, registry);
    ids = await schedulesOf([ref, ...roles.map((r) => `PractitionerRole/${r.id}`)]);
  }
  const location = params.get('location');
  if (location) {
    const atLocation = await schedulesOf([referenceParam('Location', location)]);
    ids = ids ? ids.filter((id) => atLocation.includes(id)) : atLocation;
  }
  return ids;
}

export async function findAppointments(ctx: InteractionContext, params: URLSearchParams): Promise<InteractionResult> {
  for (const key of params.keys()) if (!FIND_PARAMS.has(key)) throw badRequest(`$find: unknown parameter '${key}'`, [key]);
  const startText = params.get('start') ?? undefined;
  if (!startText) throw badRequest('$find: start is required', ['start']);
  const start = instantParam('start', startText)!;
  const end = instantParam('end', params.get('end') ?? undefined) ?? start + DEFAULT_FIND_DAYS * 86_400_000;
  if (end <= start) throw badRequest('$find: end must be after start', ['end']);
  const schedules = await scheduleFilter(ctx, params);
  const empty: Bundle = { resourceType: 'Bundle', type: 'searchset', total: 0, link: [{ relation: 'self', url: findUrl(ctx, params) }], entry: [] };
  if (schedules?.length === 0) return { status: 200, body: empty };

  const pairs: Array<[string, string]> = [
    ['status', 'free'],
    ['start', `ge${new Date(start).toISOString()}`],
    ['start', `lt${new Date(end).toISOString()}`],
    ['_sort', 'start'],
    ['_include', 'Slot:schedule'],
  ];
  if (schedules) pairs.push(['schedule', schedules.map((id) => `Schedule/${id}`).join(',')]);
  for (const key of ['service-type', '_count', '_cursor']) {
    const v = params.get(key);
    if (v !== null) pairs.push([key, v]);
  }
  const result = await searchResources(ctx, 'Slot', pairs, { strict: true });
  const bundle = JSON.parse(result.body as string) as Bundle;
  const scheduleById = new Map<string, Schedule>();
  for (const e of bundle.entry ?? []) if (e.resource?.resourceType === 'Schedule') scheduleById.set(e.resource.id!, e.resource as Schedule);
  const patient = params.get('patient') ? referenceParam('Patient', params.get('patient')!) : undefined;
  const entry: BundleEntry[] = (bundle.entry ?? [])
    .filter((e) => e.resource?.resourceType === 'Slot')
    .map((e) => {
      const slot = e.resource as Slot;
      const schedule = scheduleById.get(slot.schedule.reference?.split('/').pop() ?? '');
      return { fullUrl: `urn:uuid:${randomUUID()}`, resource: proposal(slot, schedule, patient), search: { mode: 'match' } };
    });
  const next = bundle.link?.find((l) => l.relation === 'next');
  const cursor = next ? new URL(next.url).searchParams.get('_cursor') : null;
  const link = [{ relation: 'self', url: findUrl(ctx, params) }];
  if (cursor) link.push({ relation: 'next', url: findUrl(ctx, params, cursor) });
  const found: Bundle = { resourceType: 'Bundle', type: 'searchset', ...(bundle.total !== undefined ? { total: bundle.total } : {}), link, entry };
  return { status: 200, body: found };
}

function findUrl(ctx: InteractionContext, params: URLSearchParams, cursor?: string): string {
  const q = new URLSearchParams([...params].filter(([k]) => k !== '_cursor'));
  if (cursor) q.set('_cursor', cursor);
  return `${ctx.baseUrl}/Appointment/$find?${q}`;
}

/** A proposed Appointment over one free slot: the schedule's actors as participants. */
function proposal(slot: Slot, schedule: Schedule | undefined, patient: string | undefined): Appointment {
  const participant: AppointmentParticipant[] = (schedule?.actor ?? []).map((actor) => ({ actor, required: 'required', status: 'needs-action' }));
  if (patient) participant.push({ actor: { reference: patient }, required: 'required', status: 'needs-action' });
  return {
    resourceType: 'Appointment',
    status: 'proposed',
    ...(slot.serviceType ? { serviceType: slot.serviceType } : {}),
    start: slot.start,
    end: slot.end,
    slot: [{ reference: `Slot/${slot.id}` }],
    participant: participant.length ? participant : [{ status: 'needs-action', required: 'required', type: [{ text: 'patient' }] }],
  };
}

/** The Appointment of a $book request: the body itself, or Parameters.appt-resource. */
function bookedAppointment(body: unknown): Appointment {
  let resource = body as { resourceType?: string } | undefined;
  if (resource?.resourceType === 'Parameters') {
    const param = (resource as Parameters).parameter?.find((p) => p.name === 'appt-resource');
    resource = param?.resource;
  }
  if (resource?.resourceType !== 'Appointment') throw badRequest('$book needs an Appointment, or Parameters with an appt-resource Appointment');
  const appointment = resource as Appointment;
  if (slotIds(appointment).length === 0) throw badRequest('$book: the Appointment must reference at least one Slot', ['Appointment.slot']);
  if (appointment.status && !['proposed', 'pending', 'booked'].includes(appointment.status)) {
    throw badRequest(`$book: an Appointment with status '${appointment.status}' cannot be booked`, ['Appointment.status']);
  }
  const { id: _id, meta: _meta, ...rest } = appointment;
  // Participants accept by being booked; proposals from $find say needs-action.
  const participant = (rest.participant ?? []).map((p) => (p.status === 'needs-action' ? { ...p, status: 'accepted' as const } : p));
  return { ...rest, participant, status: appointment.status === 'pending' ? 'pending' : 'booked' };
}

export async function bookAppointment(ctx: InteractionContext, body: unknown): Promise<InteractionResult> {
  const appointment = bookedAppointment(body);
  const written = await writeInTransaction(ctx, (w) => w.create(w.check(appointment, 'Appointment')));
  const booked = written.body as Appointment;
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    total: 1,
    entry: [{ fullUrl: `${ctx.baseUrl}/Appointment/${booked.id}`, resource: booked, search: { mode: 'match' } }],
  };
  return { status: 200, body: bundle };
}
