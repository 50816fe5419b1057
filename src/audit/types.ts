/**
 * What the audit trail needs to know about the request being served. The HTTP layer builds it
 * (src/http/tenant-router.ts) and puts it on InteractionContext.audit when AUDIT is on; server
 * work without a request (HL7 v2 inbound, jobs) carries none and is not audited here.
 */
export interface AuditRequest {
  /** The tenant whose store the request reached (AuditEvent.source.site). */
  tenant: string;
  /** http://hl7.org/fhir/restful-interaction code: read, search-type, create, transaction, operation … */
  interaction: string;
  /** The operation's name without '$' when interaction is 'operation'. */
  operation?: string;
  method: string;
  /** The request path below the FHIR base, e.g. 'Patient/123'. */
  path: string;
  /** The query string without '?' ('' when none). */
  query: string;
  /** The client's network address (req.ip: honours X-Forwarded-For behind a proxy). */
  ip?: string;
  requestId?: string;
  /** The FHIR base of the tenant: identifies this server as the audit source. */
  baseUrl: string;
  /** What the url names: resource type, id, version, compartment. */
  target?: { type?: string; id?: string; vid?: string };
  /**
   * Set once a record of this request has been written (by a write's transaction or after a
   * read), so that the HTTP layer adds one only for requests nothing recorded — e.g. operations
   * whose own transactions do not call Writer.recordRequest.
   */
  recorded?: boolean;
}

/** One resource (version) an audited request touched. */
export interface AuditEntity {
  resourceType: string;
  id: string;
  versionId?: number | string;
  /** Patient entities get the BALP patient role. */
  patient?: boolean;
}
