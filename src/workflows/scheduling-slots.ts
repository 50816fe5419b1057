/**
 * Slot generation: a Schedule's free Slots from the recurring availability of its actor
 * (PractitionerRole / HealthcareService availableTime and notAvailable, or Location
 * hoursOfOperation), over a rolling horizon (SLOT_HORIZON_DAYS) from now.
 *
 * Idempotent: a Slot's id is derived from (Schedule id, start), and ids that exist (in any state,
 * also deleted) are never written again, so re-running — after a restart, from two processes, on
 * every Schedule change — adds only the slots that are new, and never touches a booked one.
 * Runs are serialised per Schedule by a transaction-scoped advisory lock.
 *
 * Slot length: the Schedule's extension CAREBRIDGE_SD/slot-minutes (valuePositiveInt or
 * valueInteger), else APPOINTMENT_SLOT_MINUTES (15).
 */
import type { HealthcareService, Location, Period, PractitionerRole, Resource, Schedule, Slot } from 'fhir/r4.js';
import { FhirError, notFound, unprocessable } from '../fhir/outcome.js';
import type { InteractionContext } from '../interactions/context.js';
import { findMatches } from '../interactions/matching.js';
import { Writer } from '../interactions/writer.js';
import { searchRegistryOf } from '../search/tenant-params.js';
import { quoteIdent } from '../store/schema.js';
import type { AppointmentsConfig } from './appointments-config.js';
import { CAREBRIDGE_SD, deterministicId, refId } from './appointments-model.js';
import { dayCode, localEpochDay, localToInstant, secondsOfDay } from './scheduling-time.js';

export const SLOT_MINUTES_URL = `${CAREBRIDGE_SD}/slot-minutes`;
const MAX_SCHEDULES = 100_000;

interface Availability {
  daysOfWeek?: string[];
  allDay?: boolean;
  availableStartTime?: string;
  availableEndTime?: string;
}

interface Rules {
  available: Availability[];
  notAvailable: Period[];
}

export interface GenerateResult {
  created: number;
  existing: number;
}

export function slotIdFor(scheduleId: string, startIso: string): string {
  return deterministicId('slot', scheduleId, startIso);
}

/** Generate the missing free Slots of one Schedule; 404 if it does not exist, 422 if it has no rules. */
export async function generateSlots(ctx: InteractionContext, scheduleId: string, config: AppointmentsConfig, now = Date.now()): Promise<GenerateResult> {
  return ctx.store.db.transaction(async (tx) => {
    const writer = new Writer(ctx, tx);
    await ctx.store.lockCondition(tx, 'Slot', `generate:${scheduleId}`);
    const schedule = await readResource<Schedule>(writer, 'Schedule', scheduleId);
    if (!schedule) throw notFound(`Schedule/${scheduleId} is not known`);
    if (schedule.active === false) return { created: 0, existing: 0 };
    const rules = await rulesOf(writer, schedule);
    if (!rules) {
      throw unprocessable(`Schedule/${scheduleId}: no actor with availability (PractitionerRole or HealthcareService availableTime, Location hoursOfOperation)`, ['Schedule.actor']);
    }
    const minutes = slotMinutes(schedule, config);
    const from = Math.max(now, parseOr(schedule.planningHorizon?.start, now));
    const to = Math.min(now + config.horizonDays * 86_400_000, parseOr(schedule.planningHorizon?.end, Infinity));
    const slots = windows(rules, from, to, minutes * 60_000, config.timeZone).map(([start, end]): Slot & { id: string } => {
      const startIso = new Date(start).toISOString();
      return {
        resourceType: 'Slot',
        id: slotIdFor(scheduleId, startIso),
        schedule: { reference: `Schedule/${scheduleId}` },
        status: 'free',
        start: startIso,
        end: new Date(end).toISOString(),
        ...(schedule.serviceType ? { serviceType: schedule.serviceType } : {}),
        ...(schedule.specialty ? { specialty: schedule.specialty } : {}),
      };
    });
    const known = await existingIds(writer, slots.map((s) => s.id));
    const fresh = slots.filter((s) => !known.has(s.id));
    if (fresh.length) await writer.insertPrepared(fresh.map((s) => writer.prepareCreate(s, s.id)));
    return { created: fresh.length, existing: slots.length - fresh.length };
  });
}

/** Every active Schedule of the tenant; Schedules without availability rules are skipped. */
export async function generateAllSlots(ctx: InteractionContext, config: AppointmentsConfig, now = Date.now()): Promise<GenerateResult> {
  const total: GenerateResult = { created: 0, existing: 0 };
  const schedules = await findMatches(ctx.store.db, ctx.store.schema, 'Schedule', '', MAX_SCHEDULES, searchRegistryOf(ctx.store));
  for (const s of schedules) {
    if ((JSON.parse(s.content!) as Schedule).active === false) continue;
    try {
      const r = await generateSlots(ctx, s.id, config, now);
      total.created += r.created;
      total.existing += r.existing;
    } catch (error) {
      // No rules (422) or deleted meanwhile (404): nothing to generate; the others go on.
      if (!(error instanceof FhirError)) throw error;
    }
  }
  return total;
}

async function readResource<T extends Resource>(writer: Writer, type: string, id: string | undefined): Promise<T | undefined> {
  if (!id) return undefined;
  const current = await writer.ctx.store.current(writer.tx, type, id);
  return current && !current.deleted && current.content ? (JSON.parse(current.content) as T) : undefined;
}

/** The first actor of the Schedule that says when it is available. */
async function rulesOf(writer: Writer, schedule: Schedule): Promise<Rules | undefined> {
  for (const actor of schedule.actor ?? []) {
    for (const type of ['PractitionerRole', 'HealthcareService'] as const) {
      const r = await readResource<PractitionerRole | HealthcareService>(writer, type, refId(actor, type));
      if (r?.availableTime?.length) return { available: r.availableTime, notAvailable: (r.notAvailable ?? []).flatMap((n) => (n.during ? [n.during] : [])) };
    }
    const location = await readResource<Location>(writer, 'Location', refId(actor, 'Location'));
    if (location?.hoursOfOperation?.length) {
      const available = location.hoursOfOperation.map((h) => ({ daysOfWeek: h.daysOfWeek, allDay: h.allDay, availableStartTime: h.openingTime, availableEndTime: h.closingTime }));
      return { available, notAvailable: [] };
    }
  }
  return undefined;
}

function slotMinutes(schedule: Schedule, config: AppointmentsConfig): number {
  const ext = schedule.extension?.find((e) => e.url === SLOT_MINUTES_URL);
  const value = ext?.valuePositiveInt ?? ext?.valueInteger;
  return value !== undefined && Number.isInteger(value) && value > 0 && value <= 24 * 60 ? value : config.slotMinutes;
}

function parseOr(value: string | undefined, fallback: number): number {
  const t = value ? Date.parse(value) : Number.NaN;
  return Number.isNaN(t) ? fallback : t;
}

/** [start, end) instants of every slot in [from, to) allowed by the rules. */
function windows(rules: Rules, from: number, to: number, lengthMs: number, timeZone: string): Array<[number, number]> {
  const blocked = rules.notAvailable.map((p) => [parseOr(p.start, -Infinity), parseOr(p.end, Infinity)] as const);
  const out: Array<[number, number]> = [];
  const seen = new Set<number>();
  for (let day = localEpochDay(from, timeZone); day <= localEpochDay(to, timeZone); day++) {
    for (const a of rules.available) {
      if (a.daysOfWeek?.length && !a.daysOfWeek.includes(dayCode(day))) continue;
      const open = a.allDay ? 0 : (secondsOfDay(a.availableStartTime) ?? 0);
      const close = a.allDay ? 86_400 : (secondsOfDay(a.availableEndTime) ?? 86_400);
      const dayStart = localToInstant(day, open, timeZone);
      const dayEnd = localToInstant(day, close, timeZone);
      for (let start = dayStart; start + lengthMs <= dayEnd; start += lengthMs) {
        const end = start + lengthMs;
        if (start < from || start >= to || seen.has(start)) continue;
        if (blocked.some(([b0, b1]) => start < b1 && end > b0)) continue;
        seen.add(start);
        out.push([start, end]);
      }
    }
  }
  return out.sort((x, y) => x[0] - y[0]);
}

/** Which of these Slot ids exist (current, deleted or not). */
async function existingIds(writer: Writer, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const r = await writer.tx.query<{ id: string }>(
    `SELECT id FROM ${quoteIdent(writer.ctx.store.schema)}.resource WHERE resource_type = 'Slot' AND id = ANY($1::text[])`,
    [ids],
  );
  return new Set(r.rows.map((row) => row.id));
}
