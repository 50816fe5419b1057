/**
 * The mapping engine: walks a parsed message in segment order and, for each resource rule of
 * the message's structure (mappings/messages.json), builds a FHIR resource from its segment maps
 * (mappings/segments/*.json), links it to the resources produced before it (subject → the
 * message's Patient, result → the OBXs' Observations…) and decides how it will be written: a
 * conditional write on an identifier, a stable id derived from key values, or a new resource.
 * Pure: nothing is read or written here; src/hl7v2/apply.ts writes the plan.
 */
import { hash, randomUUID } from 'node:crypto';
import type { Identifier, Resource } from 'fhir/r4.js';
import { V2DataError, type ErrorLocation } from './ack.js';
import { CompiledMappings, type CompiledFieldRule, type CompiledIdentity, type CompiledResourceRule, type CompiledSegmentMap, type CompiledStructure } from './compiled-mappings.js';
import { FieldError, type ConvertContext } from './convert-context.js';
import { cx, ei } from './datatypes.js';
import type { MappingConfig, MessageStructure } from './mapping-config.js';
import { firstRepAt, firstTextAt, hasAt, isObject, repsAt, setAt, type FieldPath, type Scope } from './paths.js';
import { comp, type Field, type Header, type Message, type Rep, type Segment } from './parser.js';

export type WriteIdentity =
  | { kind: 'conditional'; query: string; mode: 'update' | 'reference'; preserve?: string[] }
  | { kind: 'id'; id: string }
  | { kind: 'create' };

export interface PlanEntry {
  name: string;
  fullUrl: string;
  resource: Resource;
  identity: WriteIdentity;
  /** What '@Name' in another rule's key stands for. */
  key: string;
  origin: { segment: string; sequence: number };
}

export interface MergePlan {
  /** Search for the prior patient ('identifier=system|value'). */
  priorQuery: string;
  survivorUrl: string;
  references: Array<[string, string]>;
  origin: { segment: string; sequence: number; field: number };
}

export interface Plan {
  entries: PlanEntry[];
  merges: MergePlan[];
}

const tokenEscape = (s: string) => s.replace(/[\\,|$]/g, (c) => `\\${c}`);
export const identifierQuery = (ids: Identifier[]) =>
  `identifier=${encodeURIComponent(ids.map((i) => `${tokenEscape(i.system ?? '')}|${tokenEscape(i.value ?? '')}`).join(','))}`;

export class Mapper {
  private readonly compiled: CompiledMappings;

  constructor(readonly config: MappingConfig) {
    this.compiled = new CompiledMappings(config);
  }

  /** The structure for a message type ('ADT^A01'), if supported. */
  structureFor(header: Pick<Header, 'messageCode' | 'triggerEvent'>): MessageStructure | undefined {
    return this.config.messages.get(`${header.messageCode}^${header.triggerEvent}`);
  }

  map(msg: Message, header: Header, structure: MessageStructure): Plan {
    return new MessageMapping(this.config, msg, header, this.compiled.structure(structure)).run();
  }
}

/** ERR-2 location of a field rule's value (repetition only when it says something). */
function fieldLocation(path: FieldPath, seg: Segment | undefined, repetition: number, component?: number): ErrorLocation {
  return {
    segment: path.segment,
    sequence: seg?.occurrence ?? 1,
    field: path.field,
    repetition: component !== undefined || repetition > 1 ? repetition : undefined,
    component: path.component ?? component,
    subcomponent: path.subcomponent,
  };
}

class MessageMapping {
  private readonly entries: PlanEntry[] = [];
  private readonly merges: MergePlan[] = [];
  private readonly latest = new Map<string, PlanEntry>();
  private readonly ids = new Set<string>();
  private readonly referenced = new Map<string, string>();
  private readonly ctx: ConvertContext;
  private current = { segment: 'MSH', sequence: 1 };

  constructor(
    config: MappingConfig,
    private readonly msg: Message,
    header: Header,
    private readonly structure: CompiledStructure,
  ) {
    const sender = header.sendingFacility || header.sendingApp;
    const timezone = config.facilities[sender]?.timezone ?? config.facilities['*']?.timezone ?? 'local';
    this.ctx = { config, sender, timezone, addResource: (resource, identifier) => this.addReferenced(resource, identifier) };
  }

  run(): Plan {
    const segments = this.msg.segments;
    for (const name of this.structure.required) {
      if (!segments.some((s) => s.name === name)) {
        throw new V2DataError({ code: '100', text: `Required segment ${name} is missing`, location: { segment: name, sequence: 1 } });
      }
    }
    // The latest segment of each name; rules read it as their scope (never modify it).
    const scope: Scope = new Map();
    const indexOf = new Map<string, number>();
    const lastTrigger = new Map<string, number>();
    for (let index = 0; index < segments.length; index++) {
      const seg = segments[index]!;
      scope.set(seg.name, seg);
      indexOf.set(seg.name, index);
      const rules = this.structure.bySegment.get(seg.name);
      if (rules) {
        for (const rule of rules) {
          // Context segments from before the previous trigger belong to an earlier group.
          let ruleScope = scope;
          const previous = lastTrigger.get(seg.name) ?? -1;
          for (const c of rule.context) {
            const at = indexOf.get(c);
            if (at !== undefined && at < previous) {
              if (ruleScope === scope) ruleScope = new Map(scope);
              ruleScope.delete(c);
            }
          }
          if (rule.when && !rule.when(ruleScope)) continue;
          this.current = { segment: seg.name, sequence: seg.occurrence };
          this.produce(rule, ruleScope, seg);
        }
      }
      const merge = this.structure.merge;
      if (merge && seg.name === merge.rule.segment) this.planMerge(seg, scope);
      lastTrigger.set(seg.name, index);
    }
    return { entries: this.entries, merges: this.merges };
  }

  private produce(rule: CompiledResourceRule, scope: Scope, trigger: Segment): void {
    if (rule.into) return this.produceElement(rule, rule.into, scope);
    const resourceType = rule.maps[0]!.resourceType;
    const resource = { resourceType } as Record<string, unknown>;
    for (const map of rule.maps) {
      if (scope.get(map.segment)) this.applyMap(resource, map, scope);
    }
    for (const link of rule.links) {
      const target = this.latest.get(link.name);
      if (target) setAt(resource, link.target, { reference: target.fullUrl }, link.path);
    }
    const entry: PlanEntry = {
      name: rule.rule.name ?? resourceType,
      fullUrl: `urn:uuid:${randomUUID()}`,
      resource: resource as unknown as Resource,
      identity: { kind: 'create' },
      key: '',
      origin: { segment: trigger.name, sequence: trigger.occurrence },
    };
    entry.identity = this.identity(rule.identity, resourceType, scope);
    if (entry.identity.kind === 'conditional' && rule.rule.preserve) entry.identity.preserve = rule.rule.preserve;
    entry.key = entry.identity.kind === 'conditional' ? `${resourceType}?${entry.identity.query}` : entry.identity.kind === 'id' ? `${resourceType}/${entry.identity.id}` : entry.fullUrl;
    this.entries.push(entry);
    for (const link of rule.backlinks) {
      const target = this.latest.get(link.name);
      if (target) setAt(target.resource as unknown as Record<string, unknown>, link.target, { reference: entry.fullUrl }, link.path);
    }
    this.latest.set(entry.name, entry);
  }

  /** A rule with 'into': an element of an earlier resource (Appointment.participant from AIP…). */
  private produceElement(rule: CompiledResourceRule, into: NonNullable<CompiledResourceRule['into']>, scope: Scope): void {
    const target = this.latest.get(into.name);
    if (!target) return;
    const element: Record<string, unknown> = {};
    for (const map of rule.maps) {
      if (scope.get(map.segment)) this.applyMap(element, map, scope);
    }
    for (const link of rule.links) {
      const linked = this.latest.get(link.name);
      if (linked) setAt(element, link.target, { reference: linked.fullUrl }, link.path);
    }
    if (Object.keys(element).length === 0) return;
    const resource = target.resource as unknown as Record<string, unknown>;
    if (into.target) return setAt(resource, into.target, element, into.path!);
    for (const [key, value] of Object.entries(element)) {
      const existing = resource[key];
      resource[key] = Array.isArray(existing) && Array.isArray(value) ? [...existing, ...value] : value;
    }
  }

  private applyMap(resource: Record<string, unknown>, map: CompiledSegmentMap, scope: Scope): void {
    for (const compiled of map.rules) {
      if (compiled.when && !compiled.when(scope)) continue;
      const path = compiled.path;
      if (path === undefined) {
        this.put(resource, compiled, compiled.constant!());
        continue;
      }
      const seg = scope.get(path.segment);
      let produced = 0;
      if (compiled.convertField) {
        // Converters of whole fields (text) see every repetition at once.
        const value = this.convert(compiled, seg, 0, repsAt(seg, path));
        if (value !== undefined && this.put(resource, compiled, value)) produced++;
      } else if (compiled.rule.all) {
        const reps = repsAt(seg, path);
        for (let i = 0; i < reps.length; i++) {
          const value = this.convert(compiled, seg, i, reps[i]!);
          if (value !== undefined && this.put(resource, compiled, value)) produced++;
        }
      } else {
        const rep = firstRepAt(seg, path);
        if (rep !== undefined) {
          const value = this.convert(compiled, seg, 0, rep);
          if (value !== undefined && this.put(resource, compiled, value)) produced++;
        }
      }
      if (produced === 0 && compiled.rule.required) {
        throw new V2DataError({ code: '101', text: `${compiled.rule.field} is required`, location: fieldLocation(path, seg, 1) });
      }
    }
  }

  /** Convert repetition i (or, for a field converter, the whole field); a FieldError becomes an AE naming the field. */
  private convert(compiled: CompiledFieldRule, seg: Segment | undefined, i: number, input: Rep | Field): unknown {
    try {
      return compiled.convertField ? compiled.convertField(input as Field, this.ctx, compiled.rule) : compiled.convert!(input as Rep, this.ctx, compiled.rule);
    } catch (error) {
      if (!(error instanceof FieldError)) throw error;
      throw new V2DataError({ code: error.code, text: `${compiled.rule.field}: ${error.message}`, location: fieldLocation(compiled.path!, seg, i + 1, error.component) });
    }
  }

  /** Place a converted value at the rule's target; false when the rule decided against it. */
  private put(resource: Record<string, unknown>, compiled: CompiledFieldRule, value: unknown): boolean {
    const rule = compiled.rule;
    if (rule.ifPresent && !hasAt(resource, compiled.target)) return false;
    if (rule.ifAbsent && hasAt(resource, compiled.target)) return false;
    let v = value;
    if (rule.defaults && isObject(v)) v = { ...rule.defaults, ...v };
    if (compiled.wrap) v = compiled.wrap(v);
    setAt(resource, compiled.target, v, rule.target);
    return true;
  }

  private identity(strategies: CompiledIdentity[], resourceType: string, scope: Scope): WriteIdentity {
    for (const s of strategies) {
      if (s.kind === 'match') {
        const found: Array<{ id: Identifier; type: string }> = [];
        for (const p of s.from) {
          for (const rep of repsAt(scope.get(p.segment), p)) {
            const id = s.datatype === 'CX' ? cx(rep, this.ctx) : ei(rep, this.ctx);
            if (id?.system && id.value) found.push({ id, type: s.datatype === 'CX' ? comp(rep, 5) : '' });
          }
        }
        if (found.length === 0) continue;
        let chosen = found;
        if (s.combine !== 'or') {
          const preferred = s.types.map((t) => found.find((f) => f.type === t)).find((f) => f !== undefined);
          chosen = [preferred ?? found[0]!];
        }
        const distinct = [...new Map(chosen.map((c) => [`${c.id.system}|${c.id.value}`, c.id])).values()];
        return { kind: 'conditional', query: identifierQuery(distinct), mode: s.mode };
      }
      let text = resourceType;
      for (const part of s.parts) text += `\u0000${'resource' in part ? (this.latest.get(part.resource)?.key ?? '') : firstTextAt(scope.get(part.path.segment), part.path)}`;
      // One-shot hash: no Hash object per stable id.
      let id = hash('sha256', text, 'hex').slice(0, 40);
      for (let n = 2; this.ids.has(id); n++) id = hash('sha256', `${id}#${n}`, 'hex').slice(0, 40);
      this.ids.add(id);
      return { kind: 'id', id };
    }
    return { kind: 'create' };
  }

  /** A resource referenced from a field (XCN → Practitioner): one entry per identifier per message. */
  private addReferenced(resource: Resource, identifier: Identifier): string {
    const key = `${resource.resourceType}?${identifier.system}|${identifier.value}`;
    const known = this.referenced.get(key);
    if (known) return known;
    const fullUrl = `urn:uuid:${randomUUID()}`;
    this.entries.push({
      name: resource.resourceType,
      fullUrl,
      resource,
      identity: { kind: 'conditional', query: identifierQuery([identifier]), mode: 'reference' },
      key,
      origin: { ...this.current },
    });
    this.referenced.set(key, fullUrl);
    return fullUrl;
  }

  private planMerge(seg: Segment, scope: Scope): void {
    const { rule: merge, path: p } = this.structure.merge!;
    const prior = firstRepAt(scope.get(p.segment), p);
    const location = { segment: seg.name, sequence: seg.occurrence, field: p.field };
    const id = prior ? cx(prior, this.ctx) : undefined;
    if (!id?.value) throw new V2DataError({ code: '101', text: `${merge.field} (prior patient identifier) is required`, location });
    const survivor = this.latest.get(merge.into);
    if (!survivor) throw new V2DataError({ code: '100', text: `${merge.segment} without a patient to merge into`, location });
    this.merges.push({ priorQuery: identifierQuery([id]), survivorUrl: survivor.fullUrl, references: merge.references, origin: location });
  }
}
