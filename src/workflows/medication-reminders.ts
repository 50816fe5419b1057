/**
 * Medication reminders: while a MedicationRequest is active, each of its dosage instructions with
 * a timing (medication-timing.ts) gets a chain of delayed jobs; each job, when due, writes a
 * Communication (category reminder) to the patient and queues the next one.
 *
 * - A chain belongs to one version of the request. Every new version of an active request starts
 *   its own chain (its change event); a job whose request has changed since (another version) or
 *   is no longer active — stopped, completed, cancelled, on hold — does nothing and ends its
 *   chain: the state is re-checked when the job fires, not only when it was scheduled.
 * - Exactly one Communication per reminder time: a conditional create on its identifier
 *   (request, version, dosage, time), so a job run twice (at-least-once) writes it once.
 * - With REDIS_URL the delayed jobs are durable (BullMQ); in-process ones are lost on restart
 *   (the next change of the request schedules again).
 */
import type { Communication, MedicationRequest } from 'fhir/r4.js';
import type { Logger } from 'pino';
import { Writer } from '../interactions/writer.js';
import { DEFAULT_BACKOFF, type JobInfo, type JobQueue } from '../jobs/queue.js';
import type { Tenants } from '../store/tenants.js';
import type { ChangeConsumer, ChangeJob } from '../subscriptions/consumers.js';
import { describeDosage, nextReminder } from './medication-timing.js';

export const REMINDER_QUEUE = 'medication-reminder';
export const REMINDER_IDENTIFIER_SYSTEM = 'urn:carebridge:medication-reminder';
const CATEGORY = { system: 'http://terminology.hl7.org/CodeSystem/communication-category', code: 'reminder', display: 'Reminder' };

interface ReminderJob {
  tenant: string;
  requestId: string;
  versionId: number;
  dosage: number;
  /** When this reminder is due (epoch ms). */
  at: number;
}

const medicationName = (r: MedicationRequest) =>
  r.medicationCodeableConcept?.text ?? r.medicationCodeableConcept?.coding?.[0]?.display ?? r.medicationCodeableConcept?.coding?.[0]?.code ?? r.medicationReference?.display ?? 'your medication';

export class MedicationReminders {
  constructor(
    private readonly tenants: Tenants,
    private readonly queue: JobQueue,
    private readonly logger: Logger,
  ) {}

  /** Start firing due reminders in this process. */
  start(concurrency = 2): void {
    this.queue.process<ReminderJob>(REMINDER_QUEUE, (job) => this.fire(job), { concurrency });
  }

  consumer(): ChangeConsumer {
    return {
      queue: 'workflow-medication-reminders',
      watchedTypes: async () => new Set(['MedicationRequest']),
      handle: (job) => this.onChange(job),
    };
  }

  private async current(tenant: string, id: string): Promise<{ request: MedicationRequest; versionId: number; lastUpdated: string } | undefined> {
    const store = await this.tenants.store(tenant);
    const v = await store.current(store.db, 'MedicationRequest', id);
    if (!v || v.deleted || !v.content) return undefined;
    return { request: JSON.parse(v.content) as MedicationRequest, versionId: v.versionId, lastUpdated: v.lastUpdated };
  }

  private async onChange(job: JobInfo<ChangeJob>): Promise<void> {
    const e = job.data;
    if (e.action === 'delete') return;
    const now = await this.current(e.tenant, e.id);
    // Only the version of the event, while it is current: a later version's event schedules its own chain.
    if (!now || now.versionId !== e.versionId || now.request.status !== 'active') return;
    const anchor = now.request.authoredOn ?? now.lastUpdated;
    const dosages = now.request.dosageInstruction ?? [];
    for (let i = 0; i < dosages.length; i++) {
      const at = nextReminder(dosages[i]!.timing, anchor, Date.now());
      if (at !== undefined) await this.schedule({ tenant: e.tenant, requestId: e.id, versionId: e.versionId, dosage: i, at });
    }
  }

  private schedule(r: ReminderJob): Promise<void> {
    return this.queue.add(REMINDER_QUEUE, r, {
      jobId: `${r.tenant}.${r.requestId}.${r.versionId}.${r.dosage}.${r.at}`,
      delayMs: Math.max(0, r.at - Date.now()),
      attempts: 5,
      backoff: DEFAULT_BACKOFF,
    });
  }

  private async fire(job: JobInfo<ReminderJob>): Promise<void> {
    const r = job.data;
    const now = await this.current(r.tenant, r.requestId);
    if (!now || now.versionId !== r.versionId || now.request.status !== 'active') return; // the chain ends
    const request = now.request;
    const dosage = request.dosageInstruction?.[r.dosage];
    const patient = request.subject?.reference;
    if (!dosage || !patient?.startsWith('Patient/')) return;
    const store = await this.tenants.store(r.tenant);
    const key = `${r.requestId}.${r.versionId}.${r.dosage}.${r.at}`;
    const communication: Communication = {
      resourceType: 'Communication',
      identifier: [{ system: REMINDER_IDENTIFIER_SYSTEM, value: key }],
      status: 'completed',
      category: [{ coding: [CATEGORY] }],
      subject: { reference: patient },
      recipient: [{ reference: patient }],
      about: [{ reference: `MedicationRequest/${r.requestId}` }],
      sent: new Date(r.at).toISOString(),
      payload: [{ contentString: `Time to take ${medicationName(request)}: ${describeDosage(dosage)}` }],
    };
    await store.db.transaction(async (tx) => {
      const w = new Writer({ store, baseUrl: '' }, tx);
      await w.create(w.check(communication, 'Communication'), { ifNoneExist: `identifier=${encodeURIComponent(`${REMINDER_IDENTIFIER_SYSTEM}|${key}`)}` });
    });
    // From now, not from r.at: reminders missed while the server was down are not sent in a burst.
    const next = nextReminder(dosage.timing, request.authoredOn ?? now.lastUpdated, Math.max(r.at, Date.now()));
    if (next !== undefined) await this.schedule({ ...r, at: next });
    else this.logger.debug({ request: r.requestId }, 'medication reminders: last reminder of the dosage sent');
  }
}
