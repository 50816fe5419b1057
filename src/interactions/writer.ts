/**
 * The one write path. REST, transactions, batches, HL7v2, workflows and EHR imports all write
 * through a Writer bound to one database transaction, so validation, versioning and indexing
 * (and later audit and change events) happen here, once.
 */
import { randomUUID } from 'node:crypto';
import type { Resource, SearchParameter } from 'fhir/r4.js';
import { badRequest, FhirError, gone, notFound, preconditionFailed } from '../fhir/outcome.js';
import { validateResource } from '../fhir/validator.js';
import { extractIndexRows } from '../search/extract.js';
import { searchParameterIssues } from '../search/sp-validate.js';
import { searchRegistryOf, tenantSearchParameters } from '../search/tenant-params.js';
import type { SqlClient } from '../store/db.js';
import type { CurrentVersion, NewVersion, StoredVersion } from '../store/resource-store.js';
import type { InteractionContext } from './context.js';
import { findMatches, normalizeQuery } from './matching.js';
import { fromStored, nextTimestamp, stamp } from './resource-json.js';
import { applyWriteRules, hasWriteRules } from './write-rules.js';
import { activateRequested, checkSubscription, SUBSCRIPTION } from '../subscriptions/validate.js';
import { recordWriteAudit, type WrittenVersion } from '../audit/write-audit.js';
import type { AuditEntity } from '../audit/types.js';

export type WriteKind = 'created' | 'updated' | 'deleted' | 'unchanged' | 'existing';

export interface WriteOutcome {
  kind: WriteKind;
  /** The version written, or the existing one (conditional create that matched, delete of nothing). */
  version?: StoredVersion;
  resource?: Resource;
}

/** Writes of this type change the tenant's search parameters (the version is bumped in the same transaction). */
const SEARCH_PARAMETER = 'SearchParameter';

export class Writer {
  readonly now = new Date().toISOString();
  /** Every version written through this Writer, in order: the request's Provenance and AuditEvent name them (src/audit/). */
  readonly written: WrittenVersion[] = [];
  /** Entities the request touched without writing them (named by recordRequest). */
  private readonly touched: AuditEntity[] = [];
  private recordScheduled = false;
  private recorded = false;
  /** The context with reads bound to this transaction. */
  readonly ctx: InteractionContext;

  constructor(
    ctx: InteractionContext,
    readonly tx: SqlClient,
  ) {
    this.ctx = { ...ctx, client: tx };
  }

  /** The tenant's search parameters: index rows and conditions use them (src/search/tenant-params.ts). */
  get registry() {
    return searchRegistryOf(this.ctx.store);
  }

  /** Validate a resource for writing (a SearchParameter also for search use); throws 400 with the issues. */
  check(resource: unknown, expectedType: string): Resource {
    const issues = validateResource(resource, expectedType);
    const failed = () => issues.some((i) => i.severity === 'error' || i.severity === 'fatal');
    if (expectedType === SEARCH_PARAMETER && !failed()) issues.push(...searchParameterIssues(resource as SearchParameter));
    if (failed()) throw new FhirError(400, issues);
    if (expectedType === SUBSCRIPTION) checkSubscription(resource as Resource, this.registry);
    return resource as Resource;
  }

  /** Build a first version with a server-assigned (or pre-assigned) id; nothing is written yet. */
  prepareCreate(resource: Resource, id: string = randomUUID()): NewVersion & { resource: Resource } {
    return this.version(resource, id, 1);
  }

  /** Write many first versions at once (batched SQL): the ingest path of transactions. */
  async insertPrepared(versions: NewVersion[]): Promise<void> {
    for (const v of versions) {
      if (!hasWriteRules(v.resourceType)) continue;
      const resource = (v as { resource?: Resource }).resource ?? (JSON.parse(v.content!) as Resource);
      await applyWriteRules(this, { action: 'create', resourceType: v.resourceType, id: v.id, resource });
    }
    // Rows, index rows and the outbox's change events, in one statement (src/store/write-sql.ts).
    await this.ctx.store.insertNew(this.tx, versions);
    for (const v of versions) this.noteWritten({ resourceType: v.resourceType, id: v.id, versionId: v.versionId, action: 'create', resource: (v as { resource?: Resource }).resource });
    if (versions.some((v) => v.resourceType === SEARCH_PARAMETER)) await tenantSearchParameters(this.ctx.store).bump(this.tx);
  }

  async create(resource: Resource, options: { ifNoneExist?: string; id?: string } = {}): Promise<WriteOutcome> {
    if (options.ifNoneExist !== undefined) {
      const existing = await this.lockAndMatch(resource.resourceType, options.ifNoneExist, 'If-None-Exist');
      if (existing.length > 1) throw preconditionFailed(`If-None-Exist '${options.ifNoneExist}' matches ${existing.length} resources`);
      if (existing.length === 1) return { kind: 'existing', version: existing[0] };
    }
    const v = this.prepareCreate(resource, options.id);
    await this.insertPrepared([v]);
    return { kind: 'created', version: v, resource: v.resource };
  }

  async update(resource: Resource, id: string, options: { ifMatch?: number } = {}): Promise<WriteOutcome> {
    const current = await this.ctx.store.current(this.tx, resource.resourceType, id, true);
    checkIfMatch(current, options.ifMatch);
    if (!current) {
      const v = this.version(resource, id, 1);
      await this.insertPrepared([v]);
      return { kind: 'created', version: v, resource: v.resource };
    }
    const next = this.version(resource, id, current.versionId + 1, current.lastUpdated);
    if (hasWriteRules(next.resourceType)) {
      const previous = current.deleted || !current.content ? undefined : (JSON.parse(current.content) as Resource);
      await applyWriteRules(this, { action: previous ? 'update' : 'create', resourceType: next.resourceType, id, resource: next.resource, previous });
    }
    await this.ctx.store.replaceCurrent(this.tx, current, next);
    this.noteWritten({ resourceType: next.resourceType, id, versionId: next.versionId, action: current.deleted ? 'create' : 'update', resource: next.resource });
    if (resource.resourceType === SEARCH_PARAMETER) await tenantSearchParameters(this.ctx.store).bump(this.tx);
    return { kind: current.deleted ? 'created' : 'updated', version: next, resource: next.resource };
  }

  async conditionalUpdate(resource: Resource, query: string, options: { ifMatch?: number } = {}): Promise<WriteOutcome> {
    const matches = await this.lockAndMatch(resource.resourceType, query, 'conditional update');
    if (matches.length > 1) throw preconditionFailed(`The condition '${query}' matches ${matches.length} resources`);
    const match = matches[0];
    if (match) {
      if (resource.id && resource.id !== match.id) {
        throw badRequest(`The resource id '${resource.id}' does not match the resource the condition found (${match.id})`, [`${resource.resourceType}.id`]);
      }
      return this.update(resource, match.id, options);
    }
    if (options.ifMatch !== undefined) throw preconditionFailed(`If-Match given but the condition '${query}' matches nothing`);
    if (resource.id) return this.update(resource, resource.id);
    return this.create(resource);
  }

  async delete(resourceType: string, id: string, options: { ifMatch?: number } = {}): Promise<WriteOutcome> {
    const current = await this.ctx.store.current(this.tx, resourceType, id, true);
    checkIfMatch(current, options.ifMatch);
    if (!current || current.deleted) return { kind: 'unchanged', version: current };
    const next: NewVersion = {
      resourceType,
      id,
      versionId: current.versionId + 1,
      lastUpdated: nextTimestamp(this.now, current.lastUpdated),
      deleted: true,
      content: null,
      indexRows: [],
    };
    if (hasWriteRules(resourceType)) {
      await applyWriteRules(this, { action: 'delete', resourceType, id, previous: JSON.parse(current.content!) as Resource });
    }
    await this.ctx.store.replaceCurrent(this.tx, current, next);
    this.noteWritten({ resourceType, id, versionId: next.versionId, action: 'delete' });
    if (resourceType === SEARCH_PARAMETER) await tenantSearchParameters(this.ctx.store).bump(this.tx);
    return { kind: 'deleted', version: next };
  }

  async conditionalDelete(resourceType: string, query: string): Promise<WriteOutcome> {
    const matches = await this.lockAndMatch(resourceType, query, 'conditional delete');
    if (matches.length > 1) throw preconditionFailed(`The condition '${query}' matches ${matches.length} resources; conditional delete removes one`);
    if (!matches[0]) return { kind: 'unchanged' };
    return this.delete(resourceType, matches[0].id);
  }

  /**
   * The request's Provenance and AuditEvent (src/audit/write-audit.ts) are recorded in this
   * transaction just before it commits, once, naming every version written through this Writer:
   * every write path gets them without having to remember. Call recordRequest to add resources
   * the request touched without writing them (a conditional create that matched), or to have a
   * request that wrote nothing audited too.
   */
  recordRequest(extra: AuditEntity[] = []): Promise<void> {
    this.touched.push(...extra);
    // Outside Database.transaction (no commit hooks): record now.
    if (!this.tx.beforeCommit) return this.record();
    this.scheduleRecord();
    return Promise.resolve();
  }

  private noteWritten(version: WrittenVersion): void {
    this.written.push(version);
    this.scheduleRecord();
  }

  private scheduleRecord(): void {
    if (this.recordScheduled || !this.tx.beforeCommit) return;
    this.recordScheduled = true;
    this.tx.beforeCommit(() => this.record());
  }

  private async record(): Promise<void> {
    if (this.recorded) return;
    this.recorded = true;
    await recordWriteAudit(this, this.touched);
  }

  /** Load the current version for a patch: 404/410 when there is nothing to patch. */
  async currentForPatch(resourceType: string, id: string): Promise<CurrentVersion & { content: string }> {
    const current = await this.ctx.store.current(this.tx, resourceType, id, true);
    if (!current) throw notFound(`${resourceType}/${id} is not known`);
    if (current.deleted || current.content === null) throw gone(`${resourceType}/${id} has been deleted`);
    return current as CurrentVersion & { content: string };
  }

  /** Resolve a search condition to the matching resources, holding the condition's lock. */
  async lockAndMatch(resourceType: string, query: string, what: string): Promise<StoredVersion[]> {
    const normalized = normalizeQuery(query);
    if (!normalized) throw badRequest(`The ${what} condition is empty`);
    await this.ctx.store.lockCondition(this.tx, resourceType, normalized);
    return findMatches(this.tx, this.ctx.store.schema, resourceType, query, 2, this.registry);
  }

  private version(resource: Resource, id: string, versionId: number, previousUpdated?: string): NewVersion & { resource: Resource } {
    const stamped = stamp(activateRequested(resource), id, versionId, nextTimestamp(this.now, previousUpdated));
    return {
      resourceType: stamped.resourceType,
      id,
      versionId,
      lastUpdated: stamped.meta!.lastUpdated!,
      deleted: false,
      content: JSON.stringify(stamped),
      indexRows: extractIndexRows(stamped, this.registry),
      resource: stamped,
    };
  }
}

function checkIfMatch(current: CurrentVersion | undefined, ifMatch: number | undefined): void {
  if (ifMatch === undefined) return;
  if (Number.isNaN(ifMatch)) throw badRequest('If-Match must be a version ETag such as W/"3"');
  if (!current || current.deleted) throw preconditionFailed(`If-Match W/"${ifMatch}" given but the resource does not exist`);
  if (current.versionId !== ifMatch) {
    throw preconditionFailed(`Version conflict: If-Match W/"${ifMatch}" but the current version is ${current.versionId}`);
  }
}

export { fromStored };
