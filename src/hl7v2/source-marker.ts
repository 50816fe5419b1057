/**
 * Where a resource version came from, for loop prevention of the HL7 v2 outbound feeds: the
 * inbound path stamps meta.source of every resource it writes with the sender (MSH-4 facility,
 * MSH-3 application) and the message control id, and the outbound consumer does not send that
 * version back to the facility it came from.
 *
 * A REST client that reads such a resource and writes it back unchanged in meta keeps the
 * stamp; that version is not from HL7 v2 and must be sent. So a version counts as inbound only
 * when its meta.source differs from the previous version's (every inbound message has its own
 * control id, so two inbound writes never carry the same stamp).
 */
import type { Resource } from 'fhir/r4.js';
import type { Header } from './parser.js';

const PREFIX = 'urn:carebridge:hl7v2:in:';

/** meta.source for resources written from a received message. */
export function inboundSource(header: Partial<Header>): string {
  const e = (s: string | undefined) => encodeURIComponent(s ?? '');
  return `${PREFIX}${e(header.sendingFacility)}:${e(header.sendingApp)}#${e(header.controlId)}`;
}

/** Stamp meta.source on resources about to be written by the inbound path. */
export function markInbound(resources: Iterable<Resource>, header: Partial<Header>): void {
  const source = inboundSource(header);
  for (const r of resources) r.meta = { ...r.meta, source };
}

/** The sending facility (MSH-4) of an inbound stamp, undefined for anything else. */
export function inboundFacility(source: string | undefined): string | undefined {
  if (!source?.startsWith(PREFIX)) return undefined;
  const rest = source.slice(PREFIX.length);
  return decodeURIComponent(rest.slice(0, rest.indexOf(':') < 0 ? rest.length : rest.indexOf(':')));
}

/** The facility a version was received from over HL7 v2, given the previous version's meta.source. */
export function receivedFrom(version: Resource, previousSource: string | undefined): string | undefined {
  const source = version.meta?.source;
  if (source === undefined || source === previousSource) return undefined;
  return inboundFacility(source);
}
