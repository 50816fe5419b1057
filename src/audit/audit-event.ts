/**
 * AuditEvent resources after the IHE Basic Audit Log Patterns (BALP): a RESTful interaction
 * (type rest, subtype the http://hl7.org/fhir/restful-interaction code), who asked (the user's
 * fhirUser and the client, with the network address), this server as the observer, and the
 * resources, query and patient concerned. Pure construction: writing is record.ts's job.
 */
import type { AuditEvent, AuditEventAgent, AuditEventEntity, Reference, Resource } from 'fhir/r4.js';
import type { Access } from '../auth/access.js';
import type { AuditEntity, AuditRequest } from './types.js';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
/** Identifier system of OAuth client ids in agent.who (a client is not a FHIR resource here). */
export const CLIENT_ID_SYSTEM = 'urn:carebridge:oauth-client';
export const SOFTWARE_NAME = 'CareBridge FHIR server';

export type AuditAction = 'C' | 'R' | 'U' | 'D' | 'E';
/** 0 success, 4 minor failure (the client's), 8 serious failure (the server's), 12 major failure. */
export type AuditOutcome = '0' | '4' | '8' | '12';

const ACTIONS: Record<string, AuditAction> = {
  create: 'C',
  read: 'R',
  vread: 'R',
  'history-instance': 'R',
  update: 'U',
  patch: 'U',
  delete: 'D',
};

/** C/R/U/D for single-resource interactions; E (execute) for searches, histories, bundles and operations. */
export function actionOf(interaction: string): AuditAction {
  return ACTIONS[interaction] ?? 'E';
}

export function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return '0';
  return status < 500 ? '4' : '8';
}

/** An IPv4 client seen through an IPv6 socket is written as plain IPv4. */
function networkAddress(ip: string | undefined): string | undefined {
  return ip?.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

export interface Who {
  /** The signed-in user (fhirUser), when there is one. */
  user?: Reference;
  /** The client application, or 'anonymous' when authorization is off. */
  client: Reference;
}

/** Who asked, from the checked token (or nobody: auth off). Shared with Provenance. */
export function whoOf(access: Access | undefined, ip?: string): Who {
  const address = networkAddress(ip);
  if (!access) return { client: { display: address ? `anonymous (${address})` : 'anonymous' } };
  return {
    user: access.fhirUser ? { reference: access.fhirUser } : undefined,
    client: { identifier: { system: CLIENT_ID_SYSTEM, value: access.clientId }, display: access.clientId },
  };
}

function agents(access: Access | undefined, ip: string | undefined, baseUrl: string): AuditEventAgent[] {
  const who = whoOf(access, ip);
  const address = networkAddress(ip);
  const list: AuditEventAgent[] = [];
  if (who.user) {
    list.push({
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] },
      who: who.user,
      ...(access?.userId ? { altId: access.userId } : {}),
      requestor: true,
    });
  }
  list.push({
    type: { coding: [{ system: DCM, code: '110153', display: 'Source Role ID' }] },
    who: who.client,
    requestor: !who.user,
    ...(address ? { network: { address, type: '2' as const } } : {}),
  });
  list.push({
    type: { coding: [{ system: DCM, code: '110152', display: 'Destination Role ID' }] },
    who: { display: SOFTWARE_NAME },
    requestor: false,
    network: { address: baseUrl, type: '5' },
  });
  return list;
}

function resourceEntity(e: AuditEntity): AuditEventEntity {
  if (e.patient) {
    return {
      what: { reference: `Patient/${e.id}` },
      type: { system: ENTITY_TYPE, code: '1', display: 'Person' },
      role: { system: OBJECT_ROLE, code: '1', display: 'Patient' },
    };
  }
  return {
    what: { reference: `${e.resourceType}/${e.id}${e.versionId !== undefined ? `/_history/${e.versionId}` : ''}` },
    type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
    role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' },
  };
}

function queryEntity(request: AuditRequest): AuditEventEntity {
  return {
    type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
    role: { system: OBJECT_ROLE, code: '24', display: 'Query' },
    description: `${request.method} ${request.path}`,
    query: Buffer.from(request.query, 'utf8').toString('base64'),
  };
}

export interface AuditDetails {
  request: AuditRequest;
  access?: Access;
  status: number;
  /** Resources (versions) touched; patients among them marked. */
  entities: AuditEntity[];
  /** Why it failed (an OperationOutcome's diagnostics). */
  failure?: string;
  recorded?: string;
}

const SEARCHES = new Set(['search', 'search-type', 'search-system', 'history-type', 'history-system', 'history']);

/** The AuditEvent of one REST request (or one batch entry). */
export function restAuditEvent(d: AuditDetails): AuditEvent {
  const { request } = d;
  const entity = dedupe(d.entities).map(resourceEntity);
  if (SEARCHES.has(request.interaction) || (request.interaction === 'operation' && request.query)) entity.push(queryEntity(request));
  if (request.interaction === 'operation' && request.operation) {
    entity.push({ type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '20', display: 'Job' }, name: `$${request.operation}` });
  }
  return {
    resourceType: 'AuditEvent',
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
    subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: request.interaction }],
    action: actionOf(request.interaction),
    recorded: d.recorded ?? new Date().toISOString(),
    outcome: outcomeOf(d.status),
    ...(d.failure ? { outcomeDesc: d.failure } : {}),
    agent: agents(d.access, request.ip, request.baseUrl),
    source: source(request.tenant),
    ...(entity.length ? { entity } : {}),
  };
}

export interface LoginDetails {
  tenant: string;
  baseUrl: string;
  success: boolean;
  access?: Pick<Access, 'clientId' | 'fhirUser' | 'userId'>;
  ip?: string;
  failure?: string;
}

/** BALP login: DICOM User Authentication / Login, action E. */
export function loginAuditEvent(d: LoginDetails): AuditEvent {
  const access = d.access ? ({ tenant: d.tenant, scopes: [], ...d.access } as Access) : undefined;
  return {
    resourceType: 'AuditEvent',
    type: { system: DCM, code: '110114', display: 'User Authentication' },
    subtype: [{ system: DCM, code: '110122', display: 'Login' }],
    action: 'E',
    recorded: new Date().toISOString(),
    outcome: d.success ? '0' : '4',
    ...(d.failure ? { outcomeDesc: d.failure } : {}),
    agent: agents(access, d.ip, d.baseUrl),
    source: source(d.tenant),
  };
}

function source(tenant: string): AuditEvent['source'] {
  return {
    site: tenant,
    observer: { display: SOFTWARE_NAME },
    type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
  };
}

function dedupe(entities: AuditEntity[]): AuditEntity[] {
  const seen = new Set<string>();
  return entities.filter((e) => {
    const key = `${e.patient ? 'P' : ''}${e.resourceType}/${e.id}/${e.versionId ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The patient a resource is about: itself, or its subject / patient / beneficiary reference. */
export function patientOf(resource: Resource | undefined): string | undefined {
  if (!resource) return undefined;
  if (resource.resourceType === 'Patient') return resource.id;
  const r = resource as unknown as Record<string, { reference?: unknown } | undefined>;
  for (const field of ['subject', 'patient', 'beneficiary']) {
    const ref = r[field]?.reference;
    if (typeof ref === 'string' && ref.startsWith('Patient/')) return ref.slice('Patient/'.length).split('/')[0];
  }
  return undefined;
}
