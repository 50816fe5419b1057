/**
 * Build one outbound HL7 v2 message (ER7, segments separated by CR) from the outbound maps:
 * every segment of the message type in order, each field from its rule, escaped with the
 * standard separators. MSH is a segment map like the others (its values are variables).
 */
import type { Resource } from 'fhir/r4.js';
import { escapeText, type Rep, type Separators } from '../parser.js';
import { ENCODERS } from './encoders.js';
import type { CompiledRule, OutboundConfig } from './outbound-map.js';

export const SEPARATORS: Separators = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

export interface BuildInput {
  /** Resources by role: Patient, Encounter, Order (the focus), ServiceRequest, MedicationRequest… */
  resources: Record<string, Resource | undefined>;
  /** Variables for `%name` expressions (messageCode, controlId, orderControl, placerOrderNumber…). */
  vars: Record<string, unknown>;
}

function encodeRep(rep: Rep): string {
  const e = (s: string) => escapeText(s, SEPARATORS);
  return rep
    .map((c) => c.map(e).join(SEPARATORS.subcomponent).replace(/&+$/, ''))
    .join(SEPARATORS.component)
    .replace(/\^+$/, '');
}

function valuesOf(rule: CompiledRule, resource: Resource | undefined, input: BuildInput, config: OutboundConfig): Rep[] {
  const raw = rule.value !== undefined ? [rule.value] : (rule.evaluate?.(resource, input.vars) ?? []);
  const encode = ENCODERS[rule.type ?? 'string']!;
  const reps: Rep[] = [];
  for (let v of raw) {
    if (rule.vocabulary) {
      const code = config.tables.v2Code(rule.vocabulary, String(v));
      if (code === undefined) continue; // a FHIR code without a v2 counterpart is left out, not guessed
      v = code;
    }
    const rep = encode(v, config.tables);
    if (rep) reps.push(rep);
    if (!rule.all) break;
  }
  return reps;
}

export function buildMessage(config: OutboundConfig, messageType: string, input: BuildInput): string {
  const message = config.messages.get(messageType);
  if (!message) throw new Error(`HL7 v2 outbound: no map for ${messageType}`);
  const lines: string[] = [];
  for (const id of message.segments) {
    const seg = config.segments.get(id)!;
    const resource = seg.resource ? input.resources[seg.resource] : undefined;
    if (seg.resource && !resource && !seg.always) continue;
    // fields[n] = encoded field n; MSH-1 is the separator itself and MSH-2 the encoding characters.
    const fields: string[] = [];
    for (const rule of seg.rules) {
      const reps = valuesOf(rule, resource, input, config);
      if (reps.length === 0) continue;
      if (rule.component !== undefined) {
        const parts = (fields[rule.field] ?? '').split(SEPARATORS.component);
        while (parts.length < rule.component) parts.push('');
        parts[rule.component - 1] = encodeRep(reps[0]!);
        fields[rule.field] = parts.join(SEPARATORS.component).replace(/\^+$/, '');
      } else {
        fields[rule.field] = reps.map(encodeRep).join(SEPARATORS.repetition);
      }
    }
    const body = Array.from(fields, (f) => f ?? '');
    if (seg.segment === 'MSH') {
      // MSH-1 is the field separator between 'MSH' and MSH-2: fields from 2 on.
      body.splice(0, 3, 'MSH', '^~\\&');
      lines.push(body.join(SEPARATORS.field).replace(/\|+$/, ''));
    } else {
      body[0] = seg.segment;
      lines.push(body.join(SEPARATORS.field).replace(/\|+$/, ''));
    }
  }
  return lines.join('\r');
}
