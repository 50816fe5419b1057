/**
 * The HL7 v2 → FHIR mappings, as data (mappings/*.json, documented in mappings/README.md):
 * which message types are accepted and which segment produces which resource (messages.json),
 * field-by-field segment maps (segments/*.json, after the V2-to-FHIR IG segment maps),
 * vocabularies (vocabulary.json), coding system names, identifier systems per sender, and
 * per-sender settings. Loaded and checked once at startup: a broken mapping stops the server
 * instead of failing on the first message.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkTimezone } from './datetime.js';

/** A condition on field values; several keys in one object must all hold. */
export interface Condition {
  valued?: string;
  notValued?: string;
  equals?: [string, string];
  notEquals?: [string, string];
  in?: [string, string[]];
  notIn?: [string, string[]];
  longerThan?: [string, number];
  all?: Condition[];
  any?: Condition[];
  not?: Condition;
}

export interface FieldRule {
  /** v2 path: 'PID-3', 'PV1-2.1', 'OBX-5' (segment, field, optional component and subcomponent). */
  field?: string;
  /** Data type converter (src/hl7v2/datatypes.ts). */
  type?: string;
  /** FHIR path in the resource: 'identifier[]' appends, 'period.start' sets, 'value[x]' takes the value's type. */
  target: string;
  /** Map every repetition (default: the first only). */
  all?: boolean;
  vocabulary?: string;
  /** A code missing from the vocabulary: 'skip' (default), 'error' (AE, HL7 error 103) or 'keep' as sent. */
  unmapped?: 'skip' | 'error' | 'keep';
  /** Missing value: AE with HL7 error 101. */
  required?: boolean;
  when?: Condition;
  /** A template in which the string "$value" is replaced by the converted value. */
  wrap?: unknown;
  /** Elements added to an object value when it lacks them. */
  defaults?: Record<string, unknown>;
  /** A constant (no field). */
  value?: unknown;
  /** Set only when the target already exists (units onto a quantity made by an earlier rule). */
  ifPresent?: boolean;
  /** Set only when nothing is at the target yet (a default after the rules that may set it). */
  ifAbsent?: boolean;
  /** XCN: also write a resource of this type (found or created by identifier) and reference it. */
  resource?: string;
}

export interface SegmentMap {
  id: string;
  segment: string;
  resourceType: string;
  source?: string;
  rules: FieldRule[];
}

export type Identity =
  /** Conditional write on identifier=system|value built from these fields (CX or EI), preferring types in order; 'or' searches all of them. */
  | { match: 'identifier'; from: string[]; datatype: 'CX' | 'EI'; types?: string[]; combine?: 'first' | 'or'; mode: 'update' | 'reference' }
  /** A stable id derived from these values ('@Name' = the identity of another resource of the message). */
  | { key: string[] };

export interface ResourceRule {
  /** The segment that produces the resource (once per occurrence). */
  segment: string;
  /** Segment map ids, applied in order. */
  maps: string[];
  /** Name other rules link to; default the map's resource type. */
  name?: string;
  /** Segments of the same group read with this one (e.g. the ORC before an OBR): taken when they came after the previous trigger segment. */
  context?: string[];
  when?: Condition;
  /** target path → name of the resource to reference (the latest one produced). */
  links?: Record<string, string>;
  /** name of an earlier resource → path in it that gets a reference to this one (DiagnosticReport.result). */
  backlinks?: Record<string, string>;
  /** Tried in order; the first one that applies decides. None applies: a new resource. */
  identity?: Identity[];
  /** Conditional update: elements of the stored resource kept when the message does not give them (a merge's Patient.link). */
  preserve?: string[];
  /**
   * No resource of its own: the maps build an element that goes into the latest resource of this
   * name, at `path` ('participant[]' appends, 'dosageInstruction[0]' merges) or, without a path,
   * merged into the resource itself (arrays appended, other elements replaced). `links` then
   * apply to the element.
   */
  into?: { name: string; path?: string };
}

export interface MergeRule {
  segment: string;
  /** The prior patient identifier (CX). */
  field: string;
  /** Name of the surviving patient resource in the message. */
  into: string;
  /** [resource type, reference search parameter]: resources moved from the prior patient to the survivor. */
  references: Array<[string, string]>;
}

export interface MessageStructure {
  description?: string;
  /** Segments the message must have (AE, HL7 error 100, otherwise). */
  required?: string[];
  resources: ResourceRule[];
  merge?: MergeRule;
}

export interface VocabularyEntry {
  code: string;
  display?: string;
  system?: string;
  [k: string]: unknown;
}

export interface Vocabulary {
  system?: string;
  /** Codes not in the map are kept as they are (with the table's system). */
  passthrough?: boolean;
  map: Record<string, string | VocabularyEntry>;
}

export interface AuthorityTable {
  authorities?: Record<string, string>;
  authorityTemplate?: string;
  unscopedTemplate?: string;
}

export interface MappingConfig {
  versions: string[];
  /** 'ADT^A01' → structure */
  messages: Map<string, MessageStructure>;
  segmentMaps: Map<string, SegmentMap>;
  vocabularies: Map<string, Vocabulary>;
  codingSystems: { names: Record<string, string>; patterns: Array<{ regex: RegExp; uri: string }> };
  identifierSystems: { default: AuthorityTable; facilities: Record<string, AuthorityTable> };
  facilities: Record<string, { timezone?: string }>;
}

/** mappings/ at the package root (the same from src/hl7v2 and dist/src/hl7v2 or dist/hl7v2). */
export function defaultMappingsDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const up of ['../../mappings', '../../../mappings']) {
    const dir = join(here, up);
    try {
      readFileSync(join(dir, 'messages.json'));
      return dir;
    } catch {
      // try the next candidate
    }
  }
  return join(here, '../../mappings');
}

/**
 * Objects of the mapping files without a prototype: tables are looked up with codes, names and
 * authorities taken from messages, and `constructor` or `toString` must not find what every
 * JavaScript object inherits.
 */
const withoutPrototype = (_key: string, value: unknown): unknown =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.assign(Object.create(null) as object, value) : value;

function readJson(dir: string, file: string): any {
  try {
    return JSON.parse(readFileSync(join(dir, file), 'utf8'), withoutPrototype);
  } catch (error) {
    throw new Error(`HL7 v2 mappings: cannot read ${file}: ${(error as Error).message}`);
  }
}

export function loadMappingConfig(dir: string = defaultMappingsDir()): MappingConfig {
  const messagesFile = readJson(dir, 'messages.json') as {
    versions: string[];
    messages: Record<string, string>;
    structures: Record<string, MessageStructure>;
  };
  const segmentMaps = new Map<string, SegmentMap>();
  for (const file of readdirSync(join(dir, 'segments')).filter((f) => f.endsWith('.json')).sort()) {
    const map = readJson(join(dir, 'segments'), file) as SegmentMap;
    segmentMaps.set(map.id, map);
  }
  const vocabularies = new Map(Object.entries(readJson(dir, 'vocabulary.json') as Record<string, Vocabulary>));
  const coding = readJson(dir, 'coding-systems.json') as { names: Record<string, string>; patterns: Array<{ regex: string; uri: string }> };
  const identifierSystems = readJson(dir, 'identifier-systems.json');
  const facilities = readJson(dir, 'facilities.json') as Record<string, { timezone?: string }>;

  const messages = new Map<string, MessageStructure>();
  for (const [type, structureName] of Object.entries(messagesFile.messages)) {
    const structure = messagesFile.structures[structureName];
    if (!structure) throw new Error(`HL7 v2 mappings: ${type} uses unknown structure '${structureName}'`);
    messages.set(type, structure);
  }
  const config: MappingConfig = {
    versions: messagesFile.versions,
    messages,
    segmentMaps,
    vocabularies,
    codingSystems: { names: coding.names, patterns: coding.patterns.map((p) => ({ regex: new RegExp(p.regex), uri: p.uri })) },
    identifierSystems: { default: identifierSystems.default ?? {}, facilities: identifierSystems.facilities ?? {} },
    facilities,
  };
  checkConfig(config, Object.values(messagesFile.structures));
  return config;
}

function checkConfig(config: MappingConfig, structures: MessageStructure[]): void {
  const fail = (what: string) => {
    throw new Error(`HL7 v2 mappings: ${what}`);
  };
  for (const [name, settings] of Object.entries(config.facilities)) {
    if (name === 'comment') continue;
    if (settings.timezone) {
      try {
        checkTimezone(settings.timezone);
      } catch (error) {
        fail(`facilities.json ${name}: ${(error as Error).message}`);
      }
    }
  }
  for (const map of config.segmentMaps.values()) {
    for (const rule of map.rules) {
      if (rule.vocabulary && !config.vocabularies.has(rule.vocabulary)) fail(`segment map ${map.id}: unknown vocabulary ${rule.vocabulary}`);
      if (rule.field === undefined && rule.value === undefined) fail(`segment map ${map.id}: a rule for ${rule.target} has neither field nor value`);
    }
  }
  for (const structure of structures) {
    const names = new Set<string>();
    for (const r of structure.resources) {
      if (r.into && !names.has(r.into.name)) fail(`a rule for ${r.segment} goes into ${r.into.name}, which no earlier rule of its structure produces`);
      if (!r.into) names.add(r.name ?? config.segmentMaps.get(r.maps[0] ?? '')?.resourceType ?? '');
      for (const id of r.maps) if (!config.segmentMaps.has(id)) fail(`unknown segment map ${id}`);
      if (r.into && (r.identity || r.backlinks || r.preserve)) fail(`a rule for ${r.segment} into ${r.into.name} cannot have identity, backlinks or preserve`);
    }
  }
}
