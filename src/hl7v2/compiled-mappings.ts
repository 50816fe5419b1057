/**
 * The mappings (mappings/*.json) compiled once per Mapper into what the engine runs per message:
 * field paths and FHIR target paths parsed, conditions and wrap templates turned into functions,
 * converters looked up, the resource rules of each structure grouped by trigger segment. The
 * mappings stay data; this only moves the reading of that data from every message to start-up.
 */
import { copyWithReferences } from '../fhir/references.js';
import type { ConvertContext } from './convert-context.js';
import { CONVERTERS, FIELD_CONVERTERS, type Converter } from './datatypes.js';
import type { FieldRule, MappingConfig, MergeRule, MessageStructure, ResourceRule, SegmentMap } from './mapping-config.js';
import { compileCondition, compileTemplate, parseFieldPath, targetSteps, type CompiledCondition, type FieldPath, type Step } from './paths.js';
import type { Field } from './parser.js';

type FieldConverter = (field: Field, ctx: ConvertContext, rule: FieldRule) => unknown;

export interface CompiledFieldRule {
  rule: FieldRule;
  when?: CompiledCondition;
  /** The v2 field read; undefined for a constant rule. */
  path?: FieldPath;
  /** One repetition at a time (CONVERTERS) … */
  convert?: Converter;
  /** … or the whole field (FIELD_CONVERTERS). */
  convertField?: FieldConverter;
  /** A constant rule's value, a fresh copy each time (it goes into a resource that later rules may extend). */
  constant?: () => unknown;
  wrap?: (value: unknown) => unknown;
  target: Step[];
}

export interface CompiledSegmentMap {
  id: string;
  segment: string;
  resourceType: string;
  rules: CompiledFieldRule[];
}

export type CompiledIdentity =
  | { kind: 'match'; from: FieldPath[]; datatype: 'CX' | 'EI'; types: string[]; combine?: 'first' | 'or'; mode: 'update' | 'reference' }
  /** A stable id: each part is another resource's key ('@Name') or a field's text. */
  | { kind: 'key'; parts: Array<{ resource: string } | { path: FieldPath }> };

export interface CompiledLink {
  /** The name of the resource referenced (links) or given the reference (backlinks). */
  name: string;
  path: string;
  target: Step[];
}

export interface CompiledResourceRule {
  rule: ResourceRule;
  maps: CompiledSegmentMap[];
  when?: CompiledCondition;
  context: string[];
  links: CompiledLink[];
  backlinks: CompiledLink[];
  identity: CompiledIdentity[];
  into?: { name: string; path?: string; target?: Step[] };
}

export interface CompiledStructure {
  required: string[];
  /** The resource rules triggered by each segment name, in the structure's order. */
  bySegment: Map<string, CompiledResourceRule[]>;
  merge?: { rule: MergeRule; path: FieldPath };
}

function compileFieldRule(rule: FieldRule): CompiledFieldRule {
  const compiled: CompiledFieldRule = { rule, target: targetSteps(rule.target) };
  if (rule.when) compiled.when = compileCondition(rule.when);
  if (rule.wrap !== undefined) compiled.wrap = compileTemplate(rule.wrap);
  if (rule.field === undefined) {
    const value = rule.value;
    compiled.constant = value !== null && typeof value === 'object' ? () => copyWithReferences(value) : () => value;
    return compiled;
  }
  compiled.path = parseFieldPath(rule.field);
  const type = rule.type ?? 'string';
  const convertField = FIELD_CONVERTERS[type];
  if (convertField) compiled.convertField = convertField;
  else compiled.convert = CONVERTERS[type];
  return compiled;
}

export function compileSegmentMap(map: SegmentMap): CompiledSegmentMap {
  return { id: map.id, segment: map.segment, resourceType: map.resourceType, rules: map.rules.map(compileFieldRule) };
}

const links = (record: Record<string, string> | undefined, pathFirst: boolean): CompiledLink[] =>
  Object.entries(record ?? {}).map(([a, b]) => (pathFirst ? { path: a, name: b, target: targetSteps(a) } : { name: a, path: b, target: targetSteps(b) }));

function compileResourceRule(rule: ResourceRule, maps: Map<string, CompiledSegmentMap>): CompiledResourceRule {
  return {
    rule,
    maps: rule.maps.map((id) => maps.get(id)!),
    when: rule.when ? compileCondition(rule.when) : undefined,
    context: rule.context ?? [],
    links: links(rule.links, true),
    backlinks: links(rule.backlinks, false),
    identity: (rule.identity ?? []).map((s): CompiledIdentity =>
      'match' in s
        ? { kind: 'match', from: s.from.map(parseFieldPath), datatype: s.datatype, types: s.types ?? [], combine: s.combine, mode: s.mode }
        : { kind: 'key', parts: s.key.map((k) => (k.startsWith('@') ? { resource: k.slice(1) } : { path: parseFieldPath(k) })) },
    ),
    into: rule.into && { ...rule.into, target: rule.into.path ? targetSteps(rule.into.path) : undefined },
  };
}

export function compileStructure(structure: MessageStructure, maps: Map<string, CompiledSegmentMap>): CompiledStructure {
  const bySegment = new Map<string, CompiledResourceRule[]>();
  for (const rule of structure.resources) {
    let list = bySegment.get(rule.segment);
    if (!list) bySegment.set(rule.segment, (list = []));
    list.push(compileResourceRule(rule, maps));
  }
  const merge = structure.merge && { rule: structure.merge, path: parseFieldPath(structure.merge.field) };
  return { required: structure.required ?? [], bySegment, merge };
}

/** Every segment map and every structure of a configuration, compiled. */
export class CompiledMappings {
  readonly maps = new Map<string, CompiledSegmentMap>();
  private readonly structures = new Map<MessageStructure, CompiledStructure>();

  constructor(config: MappingConfig) {
    for (const map of config.segmentMaps.values()) {
      for (const rule of map.rules) {
        if (rule.field !== undefined) parseFieldPath(rule.field);
        if (rule.field !== undefined && !CONVERTERS[rule.type ?? 'string'] && !FIELD_CONVERTERS[rule.type ?? '']) {
          throw new Error(`HL7 v2 mappings: segment map ${map.id} uses unknown data type ${rule.type}`);
        }
      }
      this.maps.set(map.id, compileSegmentMap(map));
    }
    for (const structure of config.messages.values()) this.structure(structure);
  }

  /** A structure of the configuration (compiled at start-up) or another one (compiled on first use). */
  structure(structure: MessageStructure): CompiledStructure {
    let compiled = this.structures.get(structure);
    if (!compiled) this.structures.set(structure, (compiled = compileStructure(structure, this.maps)));
    return compiled;
  }
}
