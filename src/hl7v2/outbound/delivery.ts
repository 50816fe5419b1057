/**
 * Delivery of queued outbound messages over MLLP, in order per endpoint.
 *
 * Each message has a delivery job, but a job does not send "its" message: it drains the
 * endpoint, sending the oldest waiting message (the head) first, then the next, until none is
 * left or the head fails. So a later message never overtakes an earlier one that is being
 * retried. A job ends when its own message is sent or dead; until then it throws, and the queue
 * retries it (capped exponential backoff). The head's own retry schedule is on its row
 * (next_attempt_at, from backoffDelay over its attempts), so several waiting jobs do not make the
 * endpoint see more attempts than the backoff allows. A sending lease on the row keeps two
 * workers from sending the same message at once.
 *
 * MSA-1 AA/CA: sent. AE/AR, an ACK naming another message (MSA-2), an unreadable ACK, a timeout, a refused or dropped connection: a
 * failed attempt (error and ACK kept on the row); after HL7V2_OUTBOUND_ATTEMPTS the message is
 * dead, and the next one of the endpoint goes out.
 */
import type { Endpoint } from 'fhir/r4.js';
import type { Logger } from 'pino';
import { backoffDelay, type JobInfo, type JobQueue } from '../../jobs/queue.js';
import type { ResourceStore } from '../../store/resource-store.js';
import type { Tenants } from '../../store/tenants.js';
import { sendMllp } from '../mllp-client.js';
import { DELIVERY_QUEUE, deliveryJobOptions, type DeliveryJob } from './consumer.js';
import { OutboundLog, type OutboundRow } from './outbound-log.js';
import { mllpAddress } from './routing.js';
import type { OutboundSettings } from './settings.js';

/** Thrown to have the queue try the job again later (not an error of the job itself). */
class NotYet extends Error {}

export class OutboundDelivery {
  constructor(
    private readonly tenants: Tenants,
    private readonly queue: JobQueue,
    private readonly settings: OutboundSettings,
    private readonly logger: Logger,
  ) {}

  start(concurrency = 4): void {
    this.queue.process<DeliveryJob>(DELIVERY_QUEUE, (job) => this.deliver(job), { concurrency });
  }

  /** Queue a message again (operator replay): failed/dead → queued with fresh attempts. */
  async replay(tenant: string, id: string): Promise<boolean> {
    const store = await this.tenants.store(tenant);
    const row = await new OutboundLog(store.schema).requeue(store.db, id);
    if (!row) return false;
    await this.queue.add<DeliveryJob>(DELIVERY_QUEUE, { tenant, messageId: id, endpoint: row.endpoint }, deliveryJobOptions(this.settings, `${tenant}.${id}.replay-${Date.now()}`));
    return true;
  }

  async deliver(job: JobInfo<DeliveryJob>): Promise<void> {
    const { tenant, messageId, endpoint } = job.data;
    const store = await this.tenants.store(tenant);
    const log = new OutboundLog(store.schema);
    const leaseMs = this.settings.ackTimeoutMs + 30_000;
    for (;;) {
      // Once its own message is done the job still drains what follows, but leaves waiting to
      // the jobs of those messages: only a job whose message is pending retries.
      const own = await log.status(store.db, messageId);
      const ownPending = own === 'queued' || own === 'failed';
      const head = await log.head(store.db, endpoint);
      if (!head) return;
      const blocked = !head.due ? 'waits for its next attempt' : !(await log.claim(store.db, head.id, leaseMs)) ? 'is being sent' : undefined;
      if (blocked) {
        if (ownPending) throw new NotYet(`message ${head.id} to Endpoint/${endpoint} ${blocked}`);
        return;
      }
      const failure = await this.attempt(store, log, head);
      if (failure && !failure.dead) {
        if (ownPending || head.id === messageId) throw new Error(failure.error);
        return;
      }
    }
  }

  /** One attempt at the head; undefined when sent. */
  private async attempt(store: ResourceStore, log: OutboundLog, head: OutboundRow): Promise<{ error: string; dead: boolean } | undefined> {
    let error: string;
    let ack: string | undefined;
    let ackCode: string | undefined;
    try {
      const target = await this.address(store, head.endpoint);
      ack = await sendMllp(head.raw, { ...target, timeoutMs: this.settings.ackTimeoutMs });
      const msa = ack.split(/\r\n|\r|\n/).find((s) => s.startsWith('MSA'));
      const fields = msa?.split(msa[3] ?? '|') ?? [];
      ackCode = fields[1] ?? '';
      const controlId = head.raw.slice(0, head.raw.indexOf('\r') < 0 ? undefined : head.raw.indexOf('\r')).split('|')[9] ?? '';
      // An ACK that names another message (MSA-2) acknowledges nothing of ours.
      if (msa && fields[2] !== controlId) throw new Error(`the ACK is for message '${fields[2] ?? ''}', not '${controlId}'`);
      if (ackCode === 'AA' || ackCode === 'CA') {
        await log.markSent(store.db, head.id, ack, ackCode);
        return undefined;
      }
      error = msa ? `MSA-1 ${ackCode || '(empty)'}${fields[3] ? `: ${fields[3]}` : ''}` : 'the ACK has no MSA segment';
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    const dead = head.attempts + 1 >= this.settings.attempts;
    await log.markFailed(store.db, head.id, { dead, error, ack, ackCode, retryInMs: backoffDelay(head.attempts + 1, this.settings.backoff) });
    this.logger[dead ? 'warn' : 'info']({ message: head.id, endpoint: head.endpoint, attempt: head.attempts + 1, dead, error }, 'HL7 v2 outbound delivery failed');
    return { error, dead };
  }

  /** The endpoint's address now (it may have moved since the message was queued). */
  private async address(store: ResourceStore, endpointId: string): Promise<{ host: string; port: number }> {
    const c = await store.current(store.db, 'Endpoint', endpointId);
    const endpoint = c && !c.deleted && c.content ? (JSON.parse(c.content) as Endpoint) : undefined;
    if (!endpoint || endpoint.status !== 'active') throw new Error(`Endpoint/${endpointId} is not active`);
    const address = mllpAddress(endpoint.address);
    if (!address) throw new Error(`Endpoint/${endpointId} has no mllp://host:port address`);
    return address;
  }

  /** Restart delivery of messages left waiting (after a restart with the in-process queue). */
  async resume(tenant: string): Promise<void> {
    const store = await this.tenants.store(tenant);
    const heads = await new OutboundLog(store.schema).pendingHeads(store.db);
    await this.queue.addBulk<DeliveryJob>(
      DELIVERY_QUEUE,
      heads.map((h) => ({ data: { tenant, messageId: h.id, endpoint: h.endpoint }, opts: deliveryJobOptions(this.settings, `${tenant}.${h.id}.resume-${Date.now()}`) })),
    );
  }
}
