/**
 * Where outbound messages go is FHIR data, not configuration: an Organization lists its
 * Endpoints (Organization.endpoint); an Endpoint with connectionType hl7v2-mllp, status active
 * and address mllp://host:port receives the v2 message types of its payloadType codings
 * (table 0076: OML, ORM, RDE, ADT). Endpoint.header entries "MSH-5: APP" and "MSH-6: FACILITY"
 * name the receiver (MSH-6 defaults to the Organization's name); the facility is also what loop
 * prevention compares with the MSH-4 of messages received from that system.
 */
import type { Endpoint, Organization } from 'fhir/r4.js';
import type { SqlClient } from '../../store/db.js';
import { quoteIdent } from '../../store/schema.js';

export const CONNECTION_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type';
export const MLLP_CONNECTION = 'hl7v2-mllp';
export const MESSAGE_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v2-0076';

export interface Destination {
  endpointId: string;
  host: string;
  port: number;
  /** v2 message codes (table 0076) this endpoint takes. */
  accepts: Set<string>;
  /** Organizations listing this endpoint. */
  organizations: Set<string>;
  receivingApp: string;
  receivingFacility: string;
}

function isMllp(e: Endpoint): boolean {
  const t = e.connectionType;
  return e.status === 'active' && t?.code === MLLP_CONNECTION && (t.system === undefined || t.system === CONNECTION_TYPE_SYSTEM);
}

/** host and port of mllp://host:port; undefined when the address is not one. */
export function mllpAddress(address: string | undefined): { host: string; port: number } | undefined {
  const m = /^mllp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/i.exec(address ?? '');
  if (!m || Number(m[2]) > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

function header(e: Endpoint, name: string): string | undefined {
  for (const h of e.header ?? []) {
    const colon = h.indexOf(':');
    if (colon > 0 && h.slice(0, colon).trim().toUpperCase() === name) return h.slice(colon + 1).trim();
  }
  return undefined;
}

async function current<T>(client: SqlClient, schema: string, type: string): Promise<Array<T & { id: string }>> {
  const r = await client.query<{ id: string; content: string }>(
    `SELECT id, content FROM ${quoteIdent(schema)}.resource WHERE resource_type = $1 AND NOT deleted`,
    [type],
  );
  return r.rows.map((row) => ({ ...(JSON.parse(row.content) as T), id: row.id }));
}

/** Whether the tenant has any active MLLP endpoint (the relay asks on every batch: kept to one small query). */
export async function hasMllpEndpoint(client: SqlClient, schema: string): Promise<boolean> {
  const r = await client.query<{ found: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.resource WHERE resource_type = 'Endpoint' AND NOT deleted
       AND content::jsonb->>'status' = 'active' AND content::jsonb->'connectionType'->>'code' = '${MLLP_CONNECTION}') AS found`,
  );
  return r.rows[0]?.found === true;
}

/** Every active MLLP endpoint of the tenant with the organizations that list it. */
export async function loadDestinations(client: SqlClient, schema: string): Promise<Destination[]> {
  const endpoints = (await current<Endpoint>(client, schema, 'Endpoint')).filter(isMllp);
  if (endpoints.length === 0) return [];
  const organizations = await current<Organization>(client, schema, 'Organization');
  const out: Destination[] = [];
  for (const e of endpoints) {
    const address = mllpAddress(e.address);
    if (!address) continue;
    const orgs = organizations.filter((o) => o.active !== false && (o.endpoint ?? []).some((r) => r.reference === `Endpoint/${e.id}`));
    const accepts = new Set(
      (e.payloadType ?? []).flatMap((p) => p.coding ?? []).filter((c) => c.system === MESSAGE_TYPE_SYSTEM && c.code).map((c) => c.code!.toUpperCase()),
    );
    out.push({
      endpointId: e.id,
      ...address,
      accepts,
      organizations: new Set(orgs.map((o) => o.id)),
      receivingApp: header(e, 'MSH-5') ?? '',
      receivingFacility: header(e, 'MSH-6') ?? orgs[0]?.name ?? '',
    });
  }
  return out;
}
