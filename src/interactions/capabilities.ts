/**
 * The CapabilityStatement, generated from what the server really routes and indexes: the
 * router's interaction table, the R4 resource types and the registered search parameters.
 */
import type { CapabilityStatement, CapabilityStatementRestResource } from 'fhir/r4.js';
import { fhirVersion, resourceTypes } from '../fhir/definitions.js';
import { searchParamsFor } from '../search/parameters.js';
import { websocketUrl } from '../subscriptions/ws-token.js';
import { smartSecurity } from '../auth/endpoints.js';

export interface SupportedInteractions {
  type: string[];
  system: string[];
  /** types: the resource types the operation is routed for (all when absent). */
  typeOperations: { name: string; definition: string; types?: string[] }[];
}

let cached: { key: string; statement: CapabilityStatement } | undefined;

const READ_ONLY_TYPES = new Set(['AuditEvent']);
const WRITE_CODES = new Set(['create', 'update', 'patch', 'delete']);

export function capabilityStatement(baseUrl: string, supported: SupportedInteractions, version: string): CapabilityStatement {
  const key = `${baseUrl}|${version}`;
  if (cached?.key === key) return cached.statement;
  // _revinclude values per target type: every reference parameter of every type that can point at it.
  const revIncludes = new Map<string, string[]>();
  for (const source of resourceTypes()) {
    for (const p of searchParamsFor(source).values()) {
      if (p.type !== 'reference') continue;
      for (const target of p.targets ?? []) {
        let list = revIncludes.get(target);
        if (!list) revIncludes.set(target, (list = []));
        list.push(`${source}:${p.code}`);
      }
    }
  }
  const resources: CapabilityStatementRestResource[] = resourceTypes().map((type) => ({
    type: type as CapabilityStatementRestResource['type'],
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    // AuditEvents are written by the server only (src/audit/write-audit.ts): read and search.
    interaction: supported.type.filter((code) => !(READ_ONLY_TYPES.has(type) && WRITE_CODES.has(code))).map((code) => ({ code: code as 'read' })),
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'full-support',
    conditionalUpdate: true,
    conditionalDelete: 'single',
    referencePolicy: ['literal', 'logical', 'local'],
    searchInclude: [...searchParamsFor(type).values()].filter((p) => p.type === 'reference').map((p) => `${type}:${p.code}`),
    searchRevInclude: revIncludes.get(type) ?? [],
    searchParam: [...searchParamsFor(type).values()]
      .filter((p) => p.type !== 'special')
      .map((p) => ({ name: p.code, definition: p.url, type: p.type as 'token' })),
    operation: supported.typeOperations
      .filter((o) => !o.types || o.types.includes(type))
      // Built-in OperationDefinitions are served by this server: refer to them by their address.
      .map((o) => ({ name: o.name, definition: o.definition.startsWith('OperationDefinition/') ? `${baseUrl}/${o.definition}` : o.definition })),
  }));
  const statement: CapabilityStatement = {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    publisher: 'CareBridge',
    kind: 'instance',
    software: { name: 'CareBridge', version },
    implementation: { description: 'CareBridge FHIR R4 server', url: baseUrl },
    fhirVersion: fhirVersion() as '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json'],
    rest: [
      {
        // The websocket channel of Subscriptions (src/subscriptions/websocket.ts).
        extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket', valueUrl: websocketUrl(baseUrl) }],
        mode: 'server',
        // SMART-on-FHIR endpoints (src/auth/); with AUTH_MODE=open they exist but tokens are optional.
        security: smartSecurity(baseUrl),
        resource: resources,
        interaction: supported.system.map((code) => ({ code: code as 'transaction' })),
        // Compartment search (GET Patient/[id]/[type]): src/interactions/compartment.ts.
        compartment: ['http://hl7.org/fhir/CompartmentDefinition/patient'],
      },
    ],
  };
  cached = { key, statement };
  return statement;
}
