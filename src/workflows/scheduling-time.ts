/**
 * Wall-clock time in an IANA time zone without a date library: PractitionerRole.availableTime
 * says "Monday 09:00–12:00" in the clinic's local time (SCHEDULING_TIMEZONE), slots are instants.
 */
import { zoneOffsetMinutes } from '../hl7v2/datetime.js';

/** Milliseconds the zone is ahead of UTC at the given instant. */
const zoneOffsetMs = (instant: number, timeZone: string) => zoneOffsetMinutes(instant, timeZone) * 60_000;

/** The instant of a local date (days since epoch, UTC-based) plus seconds of the day in the zone. */
export function localToInstant(epochDay: number, secondOfDay: number, timeZone: string): number {
  const wall = epochDay * 86_400_000 + secondOfDay * 1000;
  // Two passes settle the offset across a DST change (a wall time in a gap moves forward).
  let instant = wall - zoneOffsetMs(wall, timeZone);
  instant = wall - zoneOffsetMs(instant, timeZone);
  return instant;
}

/** The local calendar day (days since 1970-01-01) of an instant in the zone. */
export function localEpochDay(instant: number, timeZone: string): number {
  return Math.floor((instant + zoneOffsetMs(instant, timeZone)) / 86_400_000);
}

const DAY_CODES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** The FHIR days-of-week code of a local day. */
export function dayCode(epochDay: number): string {
  return DAY_CODES[new Date(epochDay * 86_400_000).getUTCDay()]!;
}

/** "09:30:00" → seconds of the day; undefined for a missing time. */
export function secondsOfDay(time: string | undefined): number | undefined {
  if (!time) return undefined;
  const m = /^(\d{2}):(\d{2})(?::(\d{2}))?/.exec(time);
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0) : undefined;
}
