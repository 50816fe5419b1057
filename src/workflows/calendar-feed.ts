/**
 * iCal (RFC 5545) feeds of appointments behind secret token URLs: GET /calendar/[token].ics.
 * A practitioner's feed holds the Appointments whose actor is the practitioner or one of their
 * PractitionerRoles; a patient's those of the patient. Cancelled and no-show Appointments stay in
 * the feed as STATUS:CANCELLED so calendar apps remove them; SEQUENCE is the Appointment's
 * version − 1, so every change (a cancellation too) carries a higher SEQUENCE than before.
 * Feeds cover 30 days back and everything ahead, at most 2000 events.
 */
import type { Appointment } from 'fhir/r4.js';
import express, { type Request, type Response } from 'express';
import ical, { ICalCalendarMethod, ICalEventStatus } from 'ical-generator';
import type { InteractionContext } from '../interactions/context.js';
import { findMatches } from '../interactions/matching.js';
import { searchRegistryOf } from '../search/tenant-params.js';
import type { Tenants } from '../store/tenants.js';
import { DEFAULT_TENANT } from '../store/tenants.js';
import { tenantExists } from '../tenants/directory.js';
import { tokenSubject } from './calendar-tokens.js';

const PAST_DAYS = 30;
const MAX_EVENTS = 2000;

const STATUS: Record<string, ICalEventStatus> = {
  cancelled: ICalEventStatus.CANCELLED,
  noshow: ICalEventStatus.CANCELLED,
  'entered-in-error': ICalEventStatus.CANCELLED,
  proposed: ICalEventStatus.TENTATIVE,
  pending: ICalEventStatus.TENTATIVE,
  waitlist: ICalEventStatus.TENTATIVE,
};

async function appointmentsOf(ctx: InteractionContext, subject: string): Promise<Array<{ appointment: Appointment; versionId: number }>> {
  const registry = searchRegistryOf(ctx.store);
  const since = new Date(Date.now() - PAST_DAYS * 86_400_000).toISOString();
  let actors = [subject];
  if (subject.startsWith('Practitioner/')) {
    const roles = await findMatches(ctx.store.db, ctx.store.schema, 'PractitionerRole', `practitioner=${subject}`, 1000, registry);
    actors = [subject, ...roles.map((r) => `PractitionerRole/${r.id}`)];
  }
  const found = await findMatches(ctx.store.db, ctx.store.schema, 'Appointment', `actor=${actors.join(',')}&date=ge${since}`, MAX_EVENTS, registry);
  return found.map((v) => ({ appointment: JSON.parse(v.content!) as Appointment, versionId: v.versionId }));
}

export async function calendarText(ctx: InteractionContext, subject: string, host: string): Promise<string> {
  const calendar = ical({ name: `CareBridge appointments (${subject})`, prodId: { company: 'CareBridge', product: 'appointments' }, method: ICalCalendarMethod.PUBLISH });
  for (const { appointment: a, versionId } of await appointmentsOf(ctx, subject)) {
    if (!a.start || !a.end) continue;
    calendar.createEvent({
      id: `${a.id}@${host}`,
      start: new Date(a.start),
      end: new Date(a.end),
      stamp: new Date(a.meta?.lastUpdated ?? Date.now()),
      lastModified: a.meta?.lastUpdated ? new Date(a.meta.lastUpdated) : null,
      sequence: versionId - 1,
      status: STATUS[a.status] ?? ICalEventStatus.CONFIRMED,
      summary: a.description ?? a.serviceType?.[0]?.text ?? a.serviceType?.[0]?.coding?.[0]?.display ?? 'Appointment',
    });
  }
  return calendar.toString();
}

/** GET /calendar/[token].ics (default tenant) and /calendar/[tenant]/[token].ics; unknown or revoked tokens are 404. */
export function calendarRouter(tenants: Tenants, baseUrl: string | undefined): express.Router {
  const router = express.Router();
  const feed = async (req: Request, res: Response, next: express.NextFunction) => {
    try {
      const m = /^(.+)\.ics$/.exec(String(req.params.file));
      const tenant = req.params.tenant === undefined ? DEFAULT_TENANT : String(req.params.tenant);
      // Never creates a tenant: an unknown one is simply not found.
      const store = (await tenantExists(tenants, tenant)) ? await tenants.store(tenant) : undefined;
      const origin = baseUrl ?? `${req.protocol}://${req.get('host')}`;
      const ctx: InteractionContext | undefined = store && { store, baseUrl: tenant === DEFAULT_TENANT ? `${origin}/fhir` : `${origin}/t/${tenant}/fhir` };
      const subject = m && ctx ? await tokenSubject(ctx, m[1]!) : undefined;
      if (!ctx || !subject?.reference) {
        res.status(404).type('text/plain').send('Unknown or revoked calendar link');
        return;
      }
      const text = await calendarText(ctx, subject.reference, req.hostname || 'carebridge');
      res.status(200).type('text/calendar; charset=utf-8').setHeader('Cache-Control', 'private, no-store').send(text);
    } catch (error) {
      next(error);
    }
  };
  router.get('/:file', feed);
  router.get('/:tenant/:file', feed);
  return router;
}
