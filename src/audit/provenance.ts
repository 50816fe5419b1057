/**
 * The Provenance of one write request (or transaction Bundle): every version it wrote as a
 * versioned target, when, who (the user, else the client, else anonymous) and with which client,
 * and what was done (v3-DataOperation CREATE / UPDATE / DELETE).
 */
import type { CodeableConcept, Provenance, ProvenanceAgent } from 'fhir/r4.js';
import type { Access } from '../auth/access.js';
import { whoOf } from './audit-event.js';

const DATA_OPERATION = 'http://terminology.hl7.org/CodeSystem/v3-DataOperation';
const PARTICIPANT_TYPE = 'http://terminology.hl7.org/CodeSystem/provenance-participant-type';

export interface ProvenanceTarget {
  resourceType: string;
  id: string;
  versionId: number;
  action: 'create' | 'update' | 'delete';
}

function activity(targets: ProvenanceTarget[]): CodeableConcept {
  const actions = [...new Set(targets.map((t) => t.action))];
  // One coding when the request did one kind of thing; a mixed transaction says so in text only
  // (codings of one CodeableConcept must mean the same thing).
  if (actions.length === 1) return { coding: [{ system: DATA_OPERATION, code: actions[0]!.toUpperCase(), display: actions[0] }] };
  return { text: actions.join(', ') };
}

export function requestProvenance(targets: ProvenanceTarget[], recorded: string, access: Access | undefined, ip: string | undefined): Provenance {
  const who = whoOf(access, ip);
  const agent: ProvenanceAgent[] = [];
  if (who.user) {
    agent.push({ type: { coding: [{ system: PARTICIPANT_TYPE, code: 'author', display: 'Author' }] }, who: who.user });
    agent.push({ type: { coding: [{ system: PARTICIPANT_TYPE, code: 'assembler', display: 'Assembler' }] }, who: who.client });
  } else {
    agent.push({ type: { coding: [{ system: PARTICIPANT_TYPE, code: 'author', display: 'Author' }] }, who: who.client });
  }
  return {
    resourceType: 'Provenance',
    target: targets.map((t) => ({ reference: `${t.resourceType}/${t.id}/_history/${t.versionId}` })),
    recorded,
    activity: activity(targets),
    agent,
  };
}

/** The Provenance of server-internal work (HL7 v2 inbound, workflows): the actor is a display name. */
export function serverProvenance(targets: ProvenanceTarget[], recorded: string, actor: string): Provenance {
  return {
    resourceType: 'Provenance',
    target: targets.map((t) => ({ reference: `${t.resourceType}/${t.id}/_history/${t.versionId}` })),
    recorded,
    activity: activity(targets),
    agent: [{ type: { coding: [{ system: PARTICIPANT_TYPE, code: 'author', display: 'Author' }] }, who: { display: actor } }],
  };
}
