/**
 * Writing the server's own records (AuditEvent, Provenance). They go straight to the store —
 * not through Writer.create — because the API refuses AuditEvent writes (a write rule) and
 * because they must not be audited or provenanced themselves (no recursion). They are indexed
 * like any resource, so they are searchable, but record no change event (the outbox stays the
 * user's writes: no relay work per read; Subscriptions on AuditEvent/Provenance never fire).
 */
import { randomUUID } from 'node:crypto';
import type { Resource } from 'fhir/r4.js';
import type { Config } from '../config.js';
import { FhirError } from '../fhir/outcome.js';
import type { InteractionContext } from '../interactions/context.js';
import { stamp } from '../interactions/resource-json.js';
import { extractIndexRows } from '../search/extract.js';
import { searchRegistryOf } from '../search/tenant-params.js';
import type { SqlClient } from '../store/db.js';
import type { NewVersion, ResourceStore } from '../store/resource-store.js';
import type { Tenants } from '../store/tenants.js';
import { loginAuditEvent, restAuditEvent, type LoginDetails } from './audit-event.js';
import type { AuditEntity } from './types.js';

/** Resource types the server writes itself: never audited as writes, never given a Provenance. */
export const SERVER_RECORD_TYPES: ReadonlySet<string> = new Set(['AuditEvent', 'Provenance']);

/** A first version of a server record, with a server-assigned id and its search index rows. */
export function serverRecord(store: ResourceStore, resource: Resource, now = new Date().toISOString()): NewVersion {
  const stamped = stamp(resource, resource.id ?? randomUUID(), 1, now);
  return {
    resourceType: stamped.resourceType,
    id: stamped.id!,
    versionId: 1,
    lastUpdated: now,
    deleted: false,
    content: JSON.stringify(stamped),
    indexRows: extractIndexRows(stamped, searchRegistryOf(store)),
  };
}

export async function insertServerRecords(tx: SqlClient, store: ResourceStore, resources: Resource[], now?: string): Promise<void> {
  // No change events: audit records are written on every request and no consumer reacts to them.
  await store.insertNew(tx, resources.map((r) => serverRecord(store, r, now)), { changeEvents: false });
}

/**
 * Audit records of reads and failures, written in batches: a request's record goes out at once
 * when no write is in flight for its tenant, else with the records that queued meanwhile in the
 * next statement — group commit, so concurrent reads share one commit (its disk flush) instead
 * of paying one each. Every caller still waits until its own record is committed.
 */
class AuditBatcher {
  private queue: Array<{ resource: Resource; done: (error?: unknown) => void }> = [];
  private flushing = false;

  constructor(private readonly store: ResourceStore) {}

  add(resource: Resource): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ resource, done: (error) => (error === undefined ? resolve() : reject(error)) });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        // insertNew is ONE statement (rows and index rows): autocommit is its own short transaction.
        await insertServerRecords(this.store.db, this.store, batch.map((b) => b.resource));
        for (const b of batch) b.done();
      } catch (error) {
        for (const b of batch) b.done(error ?? new Error('audit write failed'));
      }
    }
    this.flushing = false;
  }
}

const MAX_BATCH = 200;
const batchers = new WeakMap<ResourceStore, AuditBatcher>();

function batcherOf(store: ResourceStore): AuditBatcher {
  let b = batchers.get(store);
  if (!b) batchers.set(store, (b = new AuditBatcher(store)));
  return b;
}

/** Audit a request that wrote nothing (read, search, operation) or failed; resolves once committed. */
export async function recordAudit(ctx: InteractionContext, status: number, entities: AuditEntity[], failure?: string): Promise<void> {
  const request = ctx.audit;
  if (!request) return;
  await batcherOf(ctx.store).add(restAuditEvent({ request, access: ctx.access, status, entities, failure }));
  request.recorded = true;
}

/** Audit a failed request after its transaction (if any) rolled back: the failure is what happened. */
export async function recordFailure(ctx: InteractionContext, error: unknown): Promise<void> {
  const fe = error instanceof FhirError ? error : undefined;
  const status = fe?.status ?? 500;
  const failure = fe ? fe.issues.map((i) => i.diagnostics).filter(Boolean).join('; ') || `HTTP ${status}` : 'Internal server error';
  const target = ctx.audit?.target;
  const entities: AuditEntity[] = target?.type && target.id ? [{ resourceType: target.type, id: target.id, versionId: target.vid }] : [];
  await recordAudit(ctx, status, entities, failure);
}

export type LoginAudit = Omit<LoginDetails, 'baseUrl'> & { baseUrl?: string };

/**
 * Record a sign-in or token request (BALP login: DICOM 110114 / 110122) in the tenant's store.
 * For the authorization server (src/auth/): call it on every token grant and refusal. A no-op
 * when AUDIT is off. Throws if the record cannot be written (the caller decides whether to fail).
 */
export async function recordLoginAudit(deps: { config: Pick<Config, 'audit' | 'baseUrl'>; tenants: Tenants }, login: LoginAudit): Promise<void> {
  if (!deps.config.audit) return;
  const store = await deps.tenants.store(login.tenant);
  const baseUrl = login.baseUrl ?? `${deps.config.baseUrl ?? ''}${login.tenant === 'default' ? '/fhir' : `/t/${login.tenant}/fhir`}`;
  const event = loginAuditEvent({ ...login, baseUrl });
  await insertServerRecords(store.db, store, [event]);
}
