/**
 * The HL7 v2 outbound change consumer: for each committed change of a watched type, decide the
 * messages (feed-rules.ts), build them (mappings/outbound) and, in ONE transaction, record each
 * in hl7_message (direction 'out', status 'queued', dedupe key endpoint + resource version), then
 * enqueue one delivery job per message. A re-run of the change job finds the dedupe keys and only
 * re-enqueues (the queue ignores job ids it has).
 *
 * Versions are decided under a per-resource advisory lock and only while still current: the
 * newest version's own event decides (an order created and revoked before its change job ran
 * is never sent), and two change jobs of one resource never decide at once (NW then CA, never
 * CA lost to a concurrent NW).
 */
import type { Identifier, MedicationRequest, Reference, Resource, ServiceRequest } from 'fhir/r4.js';
import { UNLIMITED_ATTEMPTS, type JobInfo, type JobQueue } from '../../jobs/queue.js';
import type { SqlClient } from '../../store/db.js';
import type { ResourceStore } from '../../store/resource-store.js';
import type { Tenants } from '../../store/tenants.js';
import type { ChangeConsumer, ChangeJob } from '../../subscriptions/consumers.js';
import { hl7Timestamp } from '../ack.js';
import { receivedFrom } from '../source-marker.js';
import { decide, type Decision } from './feed-rules.js';
import { buildMessage } from './message-builder.js';
import { OutboundLog } from './outbound-log.js';
import type { OutboundConfig } from './outbound-map.js';
import { hasMllpEndpoint, loadDestinations } from './routing.js';
import type { OutboundSettings } from './settings.js';

export const CHANGE_QUEUE = 'hl7v2-outbound-change';
export const DELIVERY_QUEUE = 'hl7v2-outbound';
const WATCHED: ReadonlySet<string> = new Set(['ServiceRequest', 'MedicationRequest', 'Patient', 'Encounter']);
const NONE: ReadonlySet<string> = new Set();
/** The status a deleted order is sent as (ORC-1 CA when it had been sent). */
const DELETED_STATUS: Record<string, string> = { ServiceRequest: 'revoked', MedicationRequest: 'cancelled' };

export interface DeliveryJob {
  tenant: string;
  messageId: string;
  endpoint: string;
}

export function deliveryJobOptions(settings: OutboundSettings, jobId: string) {
  // Attempts are counted on the message row (HL7V2_OUTBOUND_ATTEMPTS); the job only retries.
  return { jobId, attempts: UNLIMITED_ATTEMPTS, backoff: settings.backoff };
}

function referenceId(ref: Reference | undefined, type: string): string | undefined {
  const m = new RegExp(`^(?:.*/)?${type}/([^/]+)$`).exec(ref?.reference ?? '');
  return m?.[1];
}

async function readCurrent(store: ResourceStore, tx: SqlClient, type: string, id: string | undefined): Promise<Resource | undefined> {
  if (!id) return undefined;
  const c = await store.current(tx, type, id);
  return c && !c.deleted && c.content ? (JSON.parse(c.content) as Resource) : undefined;
}

export class OutboundConsumer {
  constructor(
    private readonly tenants: Tenants,
    private readonly queue: JobQueue,
    private readonly config: OutboundConfig,
    private readonly settings: OutboundSettings,
  ) {}

  changeConsumer(): ChangeConsumer {
    return {
      queue: CHANGE_QUEUE,
      // Only tenants with an active MLLP endpoint pay for change jobs of these types.
      watchedTypes: async (tx, schema) => ((await hasMllpEndpoint(tx, schema)) ? WATCHED : NONE),
      handle: (job) => this.onChange(job),
      // One at a time: messages are queued (and so delivered, per endpoint) in the order the
      // relay hands out changes, i.e. commit order. Several processes sharing Redis each run one.
      concurrency: 1,
    };
  }

  async onChange(job: JobInfo<ChangeJob>): Promise<void> {
    const e = job.data;
    if (e.action === 'delete' && !DELETED_STATUS[e.resourceType]) return; // deleting a patient or encounter sends nothing
    const store = await this.tenants.store(e.tenant);
    const log = new OutboundLog(store.schema);
    const queued = await store.db.transaction(async (tx) => {
      const focus = `${e.resourceType}/${e.id}`;
      await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`${store.schema}:hl7v2-out:${focus}`]);
      const current = await store.current(tx, e.resourceType, e.id);
      if (!current || current.versionId !== e.versionId || current.deleted !== (e.action === 'delete')) return [];
      const previous = e.versionId > 1 ? await store.version(tx, e.resourceType, e.id, e.versionId - 1) : undefined;
      const previousResource = previous?.content ? (JSON.parse(previous.content) as Resource) : undefined;
      const previousSource = previousResource?.meta?.source;
      // A deleted order is cancelled (CA) like a revoked one, from its last content.
      const resource = current.deleted
        ? previousResource && ({ ...previousResource, status: DELETED_STATUS[e.resourceType] } as Resource)
        : (JSON.parse(current.content!) as Resource);
      if (!resource) return [];
      const destinations = await loadDestinations(tx, store.schema);
      if (destinations.length === 0) return [];
      const decisions = await decide(resource, destinations, receivedFrom(resource, previousSource), (endpoint) => log.eventsFor(tx, focus, endpoint));
      if (decisions.length === 0) return [];
      const roles = await this.roles(store, tx, resource);
      const ids: DeliveryJob[] = [];
      for (const d of decisions) {
        const id = await log.nextId(tx);
        const raw = this.build(d, id, roles, resource);
        const rowId = await log.enqueue(tx, id, {
          endpoint: d.destination.endpointId,
          dedupeKey: `${d.destination.endpointId}|${focus}/_history/${e.versionId}`,
          focus,
          event: d.event,
          messageType: d.messageType,
          controlId: controlIdOf(id),
          receivingApp: d.destination.receivingApp,
          receivingFacility: d.destination.receivingFacility,
          raw,
        });
        if (rowId) ids.push({ tenant: e.tenant, messageId: rowId, endpoint: d.destination.endpointId });
      }
      return ids;
    });
    await this.queue.addBulk<DeliveryJob>(
      DELIVERY_QUEUE,
      queued.map((data) => ({ data, opts: deliveryJobOptions(this.settings, `${data.tenant}.${data.messageId}`) })),
    );
  }

  /** The resources the segments read: the Patient (subject), the Encounter, the order itself. */
  private async roles(store: ResourceStore, tx: SqlClient, resource: Resource): Promise<Record<string, Resource | undefined>> {
    if (resource.resourceType === 'Patient') return { Patient: resource };
    const r = resource as ServiceRequest;
    const patient = await readCurrent(store, tx, 'Patient', referenceId(r.subject, 'Patient'));
    if (resource.resourceType === 'Encounter') return { Patient: patient, Encounter: resource };
    const encounter = await readCurrent(store, tx, 'Encounter', referenceId(r.encounter, 'Encounter'));
    return { Patient: patient, Encounter: encounter, Order: resource, [resource.resourceType]: resource };
  }

  private build(d: Decision, id: string, resources: Record<string, Resource | undefined>, focus: Resource): string {
    const [messageCode, triggerEvent] = d.messageType.split('^') as [string, string];
    const isOrder = focus.resourceType === 'ServiceRequest' || focus.resourceType === 'MedicationRequest';
    return buildMessage(this.config, d.messageType, {
      resources,
      vars: {
        sendingApp: this.settings.sendingApp,
        sendingFacility: this.settings.sendingFacility,
        receivingApp: d.destination.receivingApp,
        receivingFacility: d.destination.receivingFacility,
        timestamp: hl7Timestamp(),
        messageCode,
        triggerEvent,
        structure: this.config.messages.get(d.messageType)!.structure,
        controlId: controlIdOf(id),
        version: this.config.version,
        orderControl: isOrder ? d.event : undefined,
        placerOrderNumber: isOrder ? this.placerNumber(focus as ServiceRequest | MedicationRequest) : undefined,
        noVisitClass: resources.Encounter ? undefined : 'N',
      },
    });
  }

  /** ORC-2: the identifier typed PLAC, else the first one, else HL7V2_PLACER_SYSTEM + the resource id. */
  private placerNumber(r: ServiceRequest | MedicationRequest): Identifier {
    const ids = (r.identifier ?? []).filter((i) => i.value);
    const placer = ids.find((i) => i.type?.coding?.some((c) => c.code === 'PLAC')) ?? ids[0];
    return placer ?? { system: this.settings.placerSystem, value: r.id };
  }
}

/** MSH-10 of an outbound message: from its row id, unique in the tenant and at most 20 characters. */
export function controlIdOf(id: string): string {
  return `CB${id}`;
}
