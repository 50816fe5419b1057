/**
 * Order tasks: every active ServiceRequest that asks someone to do something gets exactly one
 * fulfilment Task (code fulfill, focus = the request), made by a change consumer after the
 * request commits:
 * - a lab order: intent order (or original-order), performer an Organization → Task owned by it;
 * - a referral: category referral (SNOMED 3457005 or code 'referral'), performer a Practitioner
 *   (or PractitionerRole) → Task owned by the receiving practitioner, who answers with
 *   Task/[id]/$accept or $reject (referral-tasks.ts).
 * "Exactly one" is a conditional create (If-None-Exist focus + code) under its condition lock, so
 * replays and concurrent events of the same request never make a second Task.
 *
 * Results move the Task (the consumer also watches DiagnosticReport, e.g. from ORU^R01 inbound):
 * a report based on the request with status preliminary/partial/registered → Task in-progress;
 * final/amended/corrected/appended → Task completed with output = the DiagnosticReport. Tasks never
 * move backwards, and cancelled/rejected/failed Tasks are left alone. A request revoked or entered
 * in error cancels its open Task. Results that came before the order (an ORU for an unknown order
 * creates the ServiceRequest from OBR/ORC, found again by its placer number when the real order
 * arrives) are applied when the Task is made.
 */
import type { DiagnosticReport, Reference, ServiceRequest, Task } from 'fhir/r4.js';
import { findMatches } from '../interactions/matching.js';
import { Writer } from '../interactions/writer.js';
import type { JobInfo } from '../jobs/queue.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { Tenants } from '../store/tenants.js';
import type { ChangeConsumer, ChangeJob } from '../subscriptions/consumers.js';
import { loadForUpdate, localReference } from './medication-params.js';

export const TASK_CODE = 'http://hl7.org/fhir/CodeSystem/task-code';
const FULFILL = { system: TASK_CODE, code: 'fulfill', display: 'Fulfill the focal request' };
const REFERRAL_CODES = new Set(['3457005', 'referral']);
const FINAL_REPORT = new Set<DiagnosticReport['status']>(['final', 'amended', 'corrected', 'appended']);
const PRELIMINARY_REPORT = new Set<DiagnosticReport['status']>(['preliminary', 'partial', 'registered']);
/** Task statuses from which results may still move it. */
const NOT_STARTED = new Set<Task['status']>(['draft', 'requested', 'received', 'accepted', 'ready']);
const OPEN = new Set<Task['status']>([...NOT_STARTED, 'in-progress', 'on-hold']);

export type OrderKind = 'lab' | 'referral';

const performerOfType = (sr: ServiceRequest, types: string[]): Reference | undefined =>
  sr.performer?.find((p) => types.some((t) => p.reference?.startsWith(`${t}/`)));

/** Which kind of order task a ServiceRequest needs, if any, and who owns it. */
export function orderTaskOwner(sr: ServiceRequest): { kind: OrderKind; owner: Reference } | undefined {
  const referral = sr.category?.some((c) => c.coding?.some((x) => REFERRAL_CODES.has(x.code ?? '')) || c.text?.toLowerCase() === 'referral');
  if (referral) {
    const owner = performerOfType(sr, ['Practitioner', 'PractitionerRole']);
    return owner ? { kind: 'referral', owner } : undefined;
  }
  if (sr.intent !== 'order' && sr.intent !== 'original-order') return undefined;
  const owner = performerOfType(sr, ['Organization']);
  return owner ? { kind: 'lab', owner } : undefined;
}

/** The search condition of a request's fulfilment Task (If-None-Exist and lookups). */
export const taskCondition = (requestRef: string) => `focus=${encodeURIComponent(requestRef)}&code=${encodeURIComponent(`${TASK_CODE}|fulfill`)}`;

/** The Task after a report on its request: moved forward, or undefined when nothing changes. */
export function taskAfterReport(task: Task, report: DiagnosticReport, reportRef: string, now: string): Task | undefined {
  if (FINAL_REPORT.has(report.status) && OPEN.has(task.status)) {
    const output = (task.output ?? []).filter((o) => o.valueReference?.reference !== reportRef);
    return { ...task, status: 'completed', lastModified: now, output: [...output, { type: { text: 'Result' }, valueReference: { reference: reportRef } }] };
  }
  if (PRELIMINARY_REPORT.has(report.status) && NOT_STARTED.has(task.status)) return { ...task, status: 'in-progress', lastModified: now };
  return undefined;
}

/** Whether a request's change can make or cancel a Task (onRequest does nothing otherwise). */
const requestNeedsWork = (sr: ServiceRequest) => sr.status === 'revoked' || sr.status === 'entered-in-error' || (sr.status === 'active' && orderTaskOwner(sr) !== undefined);

/** The local ServiceRequests a report is based on. */
const reportedOrders = (report: DiagnosticReport): string[] =>
  (report.basedOn ?? []).flatMap((based) => localReference(based.reference, 'ServiceRequest') ?? []);

export class OrderTaskConsumer implements ChangeConsumer {
  readonly queue = 'workflow-order-tasks';
  /** Most changes need nothing once the resource is read: the relay hands it over with the job. */
  readonly withCurrent = true;

  constructor(private readonly tenants: Tenants) {}

  async watchedTypes(): Promise<ReadonlySet<string>> {
    return new Set(['ServiceRequest', 'DiagnosticReport']);
  }

  readonly handle = async (job: JobInfo<ChangeJob>): Promise<void> => {
    const e = job.data;
    if (e.action === 'delete') return;
    const store = await this.tenants.store(e.tenant);
    // Most changes need nothing (an order without performer, a report on no local order): they are
    // read outside a transaction and dropped. A version once written never changes, and a later
    // version comes with its own event.
    const current = e.current !== undefined ? e.current : await store.current(store.db, e.resourceType, e.id);
    if (!current || current.deleted || !current.content) return;
    const resource = JSON.parse(current.content) as ServiceRequest | DiagnosticReport;
    if (resource.resourceType === 'ServiceRequest') {
      if (!requestNeedsWork(resource)) return;
      await store.db.transaction((tx) => this.onRequest(new Writer({ store, baseUrl: '' }, tx), resource));
      return;
    }
    const orders = await this.ordersToMove(store, reportedOrders(resource));
    if (orders.length === 0) return;
    await store.db.transaction((tx) => this.onReport(new Writer({ store, baseUrl: '' }, tx), resource, orders));
  };

  /**
   * The orders of a report whose Task may have to move. An order that gets Tasks from this
   * consumer (requestNeedsWork) is always looked at under the Task's condition lock, since its
   * Task may be being made right now; another order only when some Task focuses on it already
   * (made over REST): nothing here will make one, so an unlocked look is enough.
   */
  private async ordersToMove(store: ResourceStore, orders: string[]): Promise<string[]> {
    if (orders.length === 0) return [];
    const found = await store.currentAndReferenced(store.db, orders, 'Task', 'focus');
    return orders.filter((ref) => {
      const { version, referenced } = found.get(ref) ?? { referenced: false };
      const order = version?.content && !version.deleted ? (JSON.parse(version.content) as ServiceRequest) : undefined;
      return (order && requestNeedsWork(order)) || referenced;
    });
  }

  private async onRequest(w: Writer, sr: ServiceRequest): Promise<void> {
    const ref = `ServiceRequest/${sr.id}`;
    const condition = taskCondition(ref);
    if (sr.status === 'revoked' || sr.status === 'entered-in-error') {
      for (const match of await w.lockAndMatch('Task', condition, 'task lookup')) {
        const { resource: task } = await loadForUpdate<Task>(w, `Task/${match.id}`);
        if (OPEN.has(task.status)) await w.update({ ...task, status: 'cancelled', statusReason: { text: `${ref} is ${sr.status}` }, lastModified: w.now } as Task, match.id);
      }
      return;
    }
    if (sr.status !== 'active') return;
    const target = orderTaskOwner(sr);
    if (!target) return;
    const task: Task = {
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      code: { coding: [FULFILL] },
      focus: { reference: ref },
      ...(sr.subject ? { for: sr.subject } : {}),
      ...(sr.encounter ? { encounter: sr.encounter } : {}),
      ...(sr.requester ? { requester: sr.requester } : {}),
      owner: target.owner,
      authoredOn: w.now,
      lastModified: w.now,
      description: target.kind === 'referral' ? 'Referral' : 'Laboratory order',
    };
    const out = await w.create(w.check(task, 'Task'), { ifNoneExist: condition });
    if (out.kind !== 'created') return;
    // Results that arrived before the order (or before this Task) move it at once.
    const reports = await findMatches(w.tx, w.ctx.store.schema, 'DiagnosticReport', `based-on=${encodeURIComponent(ref)}`, 50, w.registry);
    let latest: Task = out.resource as Task;
    for (const r of reports) {
      const next = taskAfterReport(latest, JSON.parse(r.content!) as DiagnosticReport, `DiagnosticReport/${r.id}`, w.now);
      if (next) latest = next;
    }
    if (latest !== out.resource) await w.update(latest, out.version!.id);
  }

  private async onReport(w: Writer, report: DiagnosticReport, orders: string[]): Promise<void> {
    const reportRef = `DiagnosticReport/${report.id}`;
    for (const requestRef of orders) {
      // Under the Task's condition lock: a Task being created for this request right now is seen
      // (its creator holds the lock), or it sees this report when it looks for earlier results.
      for (const match of await w.lockAndMatch('Task', taskCondition(requestRef), 'task lookup')) {
        const { resource: task } = await loadForUpdate<Task>(w, `Task/${match.id}`);
        const next = taskAfterReport(task, report, reportRef, w.now);
        if (next) await w.update(next, match.id);
      }
    }
  }
}
