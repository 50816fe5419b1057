/**
 * The outbound maps (mappings/outbound/): which message types we send, their segments in order,
 * and per segment which FHIR element (a FHIRPath expression on the segment's resource, or a
 * variable such as %orderControl) goes to which field, through which data type and vocabulary.
 * Loaded and checked at start: a broken map stops the server with the file and rule named.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import { defaultMappingsDir, type MappingConfig } from '../mapping-config.js';
import { ENCODERS, ReverseTables } from './encoders.js';

export interface OutboundFieldRule {
  field: number;
  /** Put a primitive value into this component (MSH-9.1…); otherwise the data type fills the field. */
  component?: number;
  /** FHIRPath on the segment's resource; `%name` alone is a variable of the message. */
  expr?: string;
  /** A constant. */
  value?: string;
  /** Encoder name (encoders.ts); default string. */
  type?: string;
  vocabulary?: string;
  /** Every value as a repetition (default: the first). */
  all?: boolean;
}

export interface OutboundSegment {
  segment: string;
  /** The role whose resource the expressions read (Patient, Encounter, Order…); none for MSH/EVN. */
  resource?: string;
  /** Sent even when its resource is absent (with its constant and variable fields only). */
  always?: boolean;
  fields: OutboundFieldRule[];
}

export interface OutboundMessage {
  structure: string;
  segments: string[];
}

export interface CompiledRule extends OutboundFieldRule {
  evaluate?: (resource: unknown, vars: Record<string, unknown>) => unknown[];
}

export interface OutboundConfig {
  version: string;
  messages: Map<string, OutboundMessage>;
  segments: Map<string, OutboundSegment & { rules: CompiledRule[] }>;
  tables: ReverseTables;
}

function read(dir: string, file: string): any {
  try {
    return JSON.parse(readFileSync(join(dir, file), 'utf8'));
  } catch (error) {
    throw new Error(`HL7 v2 outbound mappings: cannot read ${file}: ${(error as Error).message}`);
  }
}

function compile(rule: OutboundFieldRule, where: string): CompiledRule['evaluate'] {
  if (rule.expr === undefined) return undefined;
  const variable = /^%([A-Za-z]\w*)$/.exec(rule.expr);
  if (variable) {
    const name = variable[1]!;
    return (_resource, vars) => {
      const v = vars[name];
      return v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
    };
  }
  try {
    const fn = fhirpath.compile(rule.expr, r4);
    return (resource, vars) => (resource === undefined ? [] : (fn(resource as object, vars as Record<string, unknown>) as unknown[]));
  } catch (error) {
    throw new Error(`HL7 v2 outbound mappings: ${where}: bad expression '${rule.expr}': ${(error as Error).message}`);
  }
}

export function loadOutboundConfig(mapping: MappingConfig, dir: string = join(defaultMappingsDir(), 'outbound')): OutboundConfig {
  const file = read(dir, 'messages.json') as { version: string; messages: Record<string, OutboundMessage> };
  const tables = new ReverseTables(mapping);
  const segments: OutboundConfig['segments'] = new Map();
  for (const name of readdirSync(join(dir, 'segments')).filter((f) => f.endsWith('.json')).sort()) {
    const seg = read(join(dir, 'segments'), name) as OutboundSegment;
    const rules = seg.fields.map((rule) => {
      const where = `segments/${name} ${seg.segment}-${rule.field}`;
      if (!ENCODERS[rule.type ?? 'string']) throw new Error(`HL7 v2 outbound mappings: ${where}: unknown type ${rule.type}`);
      if (rule.vocabulary && !mapping.vocabularies.has(rule.vocabulary)) throw new Error(`HL7 v2 outbound mappings: ${where}: unknown vocabulary ${rule.vocabulary}`);
      if ((rule.expr === undefined) === (rule.value === undefined)) throw new Error(`HL7 v2 outbound mappings: ${where}: give either expr or value`);
      return { ...rule, evaluate: compile(rule, where) };
    });
    segments.set(name.replace(/\.json$/, ''), { ...seg, rules });
  }
  const messages = new Map(Object.entries(file.messages));
  for (const [type, m] of messages) {
    for (const s of m.segments) if (!segments.has(s)) throw new Error(`HL7 v2 outbound mappings: ${type} uses unknown segment map ${s}`);
  }
  return { version: file.version, messages, segments, tables };
}
