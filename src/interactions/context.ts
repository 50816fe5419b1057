/**
 * What every interaction receives: the tenant's store and the base URL links are written with.
 * Interactions know nothing of express; the HTTP layer builds this from the request.
 */
import type { Resource } from 'fhir/r4.js';
import type { Access } from '../auth/access.js';
import type { AuditRequest } from '../audit/types.js';
import type { SqlClient } from '../store/db.js';
import type { ResourceStore, StoredVersion } from '../store/resource-store.js';

export interface InteractionContext {
  store: ResourceStore;
  /** Base URL of the FHIR endpoint for this tenant, without a trailing slash. */
  baseUrl: string;
  /** Set inside a transaction Bundle: reads then see (and wait for) that transaction's writes. */
  client?: SqlClient;
  /**
   * Who is asking (a checked access token); undefined when authorization is off (AUTH_MODE=open)
   * or for the server's own work (HL7 v2 inbound, jobs), which is not limited by scopes.
   */
  access?: Access;
  /**
   * The request being served, for its AuditEvent and Provenance (src/audit/); undefined when
   * AUDIT is off and for server-internal work, which then records neither.
   */
  audit?: AuditRequest;
  /**
   * Who does server-internal work that has no request (e.g. 'HL7 v2 inbound from LAB (LIS)'):
   * the agent of its writes' Provenance. Defaults to the server itself.
   */
  actor?: string;
}

/** Where reads go: the enclosing transaction if any, else the pool. */
export function readClient(ctx: InteractionContext): SqlClient {
  return ctx.client ?? ctx.store.db;
}

/** The result of one interaction, before the HTTP layer (or a Bundle entry) renders it. */
export interface InteractionResult {
  status: number;
  /** A resource object, or stored JSON text sent as is (no re-serialisation on reads). */
  body?: Resource | string;
  /** The version this result is about: gives ETag, Last-Modified and Location. */
  version?: StoredVersion;
  /** Set Location (creates) rather than Content-Location. */
  created?: boolean;
  headers?: Record<string, string>;
  /** A non-FHIR body sent as is (a rendered PDF); the route declares the type in Route.produces. */
  raw?: { contentType: string; data: Buffer; filename?: string };
}

export function etag(versionId: number | string): string {
  return `W/"${versionId}"`;
}

/** Parse an ETag / If-Match value ('W/"3"', '"3"' or '3') to a version number. */
export function parseVersionTag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?(\d+)"?\s*$/.exec(value);
  return m ? Number(m[1]) : Number.NaN;
}

export function versionUrl(baseUrl: string, v: Pick<StoredVersion, 'resourceType' | 'id' | 'versionId'>): string {
  return `${baseUrl}/${v.resourceType}/${v.id}/_history/${v.versionId}`;
}
