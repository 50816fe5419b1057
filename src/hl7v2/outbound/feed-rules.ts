/**
 * Which messages one resource version causes, per destination:
 * - ServiceRequest (intent order/original-order) with a performer Organization whose endpoint
 *   takes OML (OML^O21, preferred) or ORM (ORM^O01): NW when first sent and active, XO for a later
 *   active version, CA when revoked or entered-in-error after it was sent.
 * - MedicationRequest with dispenseRequest.performer → RDE^O11: NW, XO, CA (cancelled, stopped,
 *   entered-in-error).
 * - Patient → ADT^A08 to every ADT endpoint; Encounter → ADT^A04 the first time, A08 after.
 * Nothing goes back to the facility the version was received from over HL7 v2.
 */
import type { MedicationRequest, Reference, Resource, ServiceRequest } from 'fhir/r4.js';
import type { Destination } from './routing.js';

export interface Decision {
  destination: Destination;
  messageType: string;
  /** ORC-1 for orders, the trigger event for ADT; also recorded on the row (event). */
  event: string;
}

/** What was already recorded for this resource and endpoint (any status). */
export type PriorEvents = (endpointId: string) => Promise<Set<string>>;

const ORDER_INTENTS = new Set(['order', 'original-order']);
const CANCELLED: Record<string, Set<string>> = {
  ServiceRequest: new Set(['revoked', 'entered-in-error']),
  MedicationRequest: new Set(['cancelled', 'stopped', 'entered-in-error']),
};

function organizationId(ref: Reference | undefined): string | undefined {
  const m = /^(?:.*\/)?Organization\/([^/]+)$/.exec(ref?.reference ?? '');
  return m?.[1];
}

async function orderControl(resource: ServiceRequest | MedicationRequest, prior: Set<string>): Promise<string | undefined> {
  if (prior.has('CA')) return undefined; // cancelled orders stay cancelled
  const sent = prior.has('NW');
  if (resource.status === 'active' && ORDER_INTENTS.has(resource.intent)) return sent ? 'XO' : 'NW';
  if (CANCELLED[resource.resourceType]!.has(resource.status) && sent) return 'CA';
  return undefined;
}

export async function decide(resource: Resource, destinations: Destination[], receivedFrom: string | undefined, prior: PriorEvents): Promise<Decision[]> {
  const eligible = destinations.filter((d) => receivedFrom === undefined || d.receivingFacility !== receivedFrom);
  const out: Decision[] = [];
  switch (resource.resourceType) {
    case 'ServiceRequest': {
      const request = resource as ServiceRequest;
      const performers = new Set((request.performer ?? []).map(organizationId).filter((id): id is string => !!id));
      for (const d of eligible) {
        if (![...d.organizations].some((o) => performers.has(o))) continue;
        const messageType = d.accepts.has('OML') ? 'OML^O21' : d.accepts.has('ORM') ? 'ORM^O01' : undefined;
        const event = messageType && (await orderControl(request, await prior(d.endpointId)));
        if (messageType && event) out.push({ destination: d, messageType, event });
      }
      break;
    }
    case 'MedicationRequest': {
      const request = resource as MedicationRequest;
      const performer = organizationId(request.dispenseRequest?.performer);
      for (const d of eligible) {
        if (!performer || !d.organizations.has(performer) || !d.accepts.has('RDE')) continue;
        const event = await orderControl(request, await prior(d.endpointId));
        if (event) out.push({ destination: d, messageType: 'RDE^O11', event });
      }
      break;
    }
    case 'Patient':
      for (const d of eligible) if (d.accepts.has('ADT')) out.push({ destination: d, messageType: 'ADT^A08', event: 'A08' });
      break;
    case 'Encounter':
      for (const d of eligible) {
        if (!d.accepts.has('ADT')) continue;
        const event = (await prior(d.endpointId)).size === 0 ? 'A04' : 'A08';
        out.push({ destination: d, messageType: `ADT^${event}`, event });
      }
      break;
  }
  return out;
}
