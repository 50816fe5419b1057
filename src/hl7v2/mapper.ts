/**
 * The mapping engine: walks a parsed message in segment order and, for each resource rule of
 * the message's structure (mappings/messages.json), builds a FHIR resource from its segment maps
 * (mappings/segments/*.json), links it to the resources produced before it (subject → the
 * message's Patient, result → the OBXs' Observations…) and decides how it will be written: a
 * conditional write on an identifier, a stable id derived from key values, or a new resource.
 * Pure: nothing is read or written here; src/hl7v2/apply.ts writes the plan.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Identifier, Resource } from 'fhir/r4.js';
import { copyWithReferences } from '../fhir/references.js';
import { V2DataError } from './ack.js';
import { FieldError, type ConvertContext } from './convert-context.js';
import { CONVERTERS, cx, ei, FIELD_CONVERTERS } from './datatypes.js';
import type { FieldRule, Identity, MappingConfig, MessageStructure, ResourceRule, SegmentMap } from './mapping-config.js';
import { evaluate, firstText, hasPath, isObject, parseFieldPath, repsAt, setPath, substitute, type Scope } from './paths.js';
import { comp, type Header, type Message, type Segment } from './parser.js';

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
  constructor(readonly config: MappingConfig) {
    for (const map of config.segmentMaps.values()) {
      for (const rule of map.rules) {
        if (rule.field !== undefined) parseFieldPath(rule.field);
        if (rule.field !== undefined && !CONVERTERS[rule.type ?? 'string'] && !FIELD_CONVERTERS[rule.type ?? '']) {
          throw new Error(`HL7 v2 mappings: segment map ${map.id} uses unknown data type ${rule.type}`);
        }
      }
    }
  }

  /** The structure for a message type ('ADT^A01'), if supported. */
  structureFor(header: Pick<Header, 'messageCode' | 'triggerEvent'>): MessageStructure | undefined {
    return this.config.messages.get(`${header.messageCode}^${header.triggerEvent}`);
  }

  map(msg: Message, header: Header, structure: MessageStructure): Plan {
    return new MessageMapping(this.config, msg, header, structure).run();
  }
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
    private readonly config: MappingConfig,
    private readonly msg: Message,
    header: Header,
    private readonly structure: MessageStructure,
  ) {
    const sender = header.sendingFacility || header.sendingApp;
    const timezone = config.facilities[sender]?.timezone ?? config.facilities['*']?.timezone ?? 'local';
    this.ctx = { config, sender, timezone, addResource: (resource, identifier) => this.addReferenced(resource, identifier) };
  }

  run(): Plan {
    for (const name of this.structure.required ?? []) {
      if (!this.msg.segments.some((s) => s.name === name)) {
        throw new V2DataError({ code: '100', text: `Required segment ${name} is missing`, location: { segment: name, sequence: 1 } });
      }
    }
    const recent = new Map<string, { seg: Segment; index: number }>();
    const lastTrigger = new Map<string, number>();
    this.msg.segments.forEach((seg, index) => {
      recent.set(seg.name, { seg, index });
      for (const rule of this.structure.resources) {
        if (rule.segment !== seg.name) continue;
        const scope: Scope = new Map([...recent].map(([name, r]) => [name, r.seg]));
        for (const c of rule.context ?? []) {
          const r = recent.get(c);
          if (r && r.index < (lastTrigger.get(seg.name) ?? -1)) scope.delete(c);
        }
        if (rule.when && !evaluate(rule.when, scope)) continue;
        this.current = { segment: seg.name, sequence: seg.occurrence };
        this.produce(rule, scope, seg);
      }
      const merge = this.structure.merge;
      if (merge && seg.name === merge.segment) this.planMerge(seg, new Map([...recent].map(([n, r]) => [n, r.seg])));
      lastTrigger.set(seg.name, index);
    });
    return { entries: this.entries, merges: this.merges };
  }

  private produce(rule: ResourceRule, scope: Scope, trigger: Segment): void {
    if (rule.into) return this.produceElement(rule, rule.into, scope);
    const maps = rule.maps.map((id) => this.config.segmentMaps.get(id)!);
    const resourceType = maps[0]!.resourceType;
    const resource = { resourceType } as Record<string, unknown>;
    for (const map of maps) {
      const seg = scope.get(map.segment);
      if (seg) this.applyMap(resource, map, scope);
    }
    for (const [path, name] of Object.entries(rule.links ?? {})) {
      const target = this.latest.get(name);
      if (target) setPath(resource, path, { reference: target.fullUrl });
    }
    const entry: PlanEntry = {
      name: rule.name ?? resourceType,
      fullUrl: `urn:uuid:${randomUUID()}`,
      resource: resource as unknown as Resource,
      identity: { kind: 'create' },
      key: '',
      origin: { segment: trigger.name, sequence: trigger.occurrence },
    };
    entry.identity = this.identity(rule.identity ?? [], resourceType, scope);
    if (entry.identity.kind === 'conditional' && rule.preserve) entry.identity.preserve = rule.preserve;
    entry.key = entry.identity.kind === 'conditional' ? `${resourceType}?${entry.identity.query}` : entry.identity.kind === 'id' ? `${resourceType}/${entry.identity.id}` : entry.fullUrl;
    this.entries.push(entry);
    for (const [name, path] of Object.entries(rule.backlinks ?? {})) {
      const target = this.latest.get(name);
      if (target) setPath(target.resource as unknown as Record<string, unknown>, path, { reference: entry.fullUrl });
    }
    this.latest.set(entry.name, entry);
  }

  /** A rule with 'into': an element of an earlier resource (Appointment.participant from AIP…). */
  private produceElement(rule: ResourceRule, into: { name: string; path?: string }, scope: Scope): void {
    const target = this.latest.get(into.name);
    if (!target) return;
    const element: Record<string, unknown> = {};
    for (const id of rule.maps) {
      const map = this.config.segmentMaps.get(id)!;
      if (scope.get(map.segment)) this.applyMap(element, map, scope);
    }
    for (const [path, name] of Object.entries(rule.links ?? {})) {
      const linked = this.latest.get(name);
      if (linked) setPath(element, path, { reference: linked.fullUrl });
    }
    if (Object.keys(element).length === 0) return;
    const resource = target.resource as unknown as Record<string, unknown>;
    if (into.path) return setPath(resource, into.path, element);
    for (const [key, value] of Object.entries(element)) {
      const existing = resource[key];
      resource[key] = Array.isArray(existing) && Array.isArray(value) ? [...existing, ...value] : value;
    }
  }

  private applyMap(resource: Record<string, unknown>, map: SegmentMap, scope: Scope): void {
    for (const rule of map.rules) {
      if (rule.when && !evaluate(rule.when, scope)) continue;
      if (rule.field === undefined) {
        this.put(resource, rule, copyWithReferences(rule.value));
        continue;
      }
      const path = parseFieldPath(rule.field);
      const seg = scope.get(path.segment);
      const reps = repsAt(seg, path);
      let produced = 0;
      const location = (repetition: number, component?: number) => ({
        segment: path.segment,
        sequence: seg?.occurrence ?? 1,
        field: path.field,
        repetition: component !== undefined || repetition > 1 ? repetition : undefined,
        component: path.component ?? component,
        subcomponent: path.subcomponent,
      });
      const type = rule.type ?? 'string';
      const fieldConverter = FIELD_CONVERTERS[type];
      const candidates = fieldConverter ? [reps] : rule.all ? reps.map((r) => [r]) : reps.slice(0, 1).map((r) => [r]);
      candidates.forEach((group, i) => {
        let value: unknown;
        try {
          value = fieldConverter ? fieldConverter(group, this.ctx, rule) : CONVERTERS[type]!(group[0]!, this.ctx, rule);
        } catch (error) {
          if (!(error instanceof FieldError)) throw error;
          throw new V2DataError({ code: error.code, text: `${rule.field}: ${error.message}`, location: location(i + 1, error.component) });
        }
        if (value === undefined) return;
        if (this.put(resource, rule, value)) produced++;
      });
      if (produced === 0 && rule.required) {
        throw new V2DataError({ code: '101', text: `${rule.field} is required`, location: location(1) });
      }
    }
  }

  /** Place a converted value at the rule's target; false when the rule decided against it. */
  private put(resource: Record<string, unknown>, rule: FieldRule, value: unknown): boolean {
    let v = value;
    if (rule.defaults && isObject(v)) v = { ...rule.defaults, ...v };
    if (rule.wrap !== undefined) v = substitute(rule.wrap, v);
    if (rule.ifPresent && !hasPath(resource, rule.target)) return false;
    if (rule.ifAbsent && hasPath(resource, rule.target)) return false;
    setPath(resource, rule.target, v);
    return true;
  }

  private identity(strategies: Identity[], resourceType: string, scope: Scope): WriteIdentity {
    for (const s of strategies) {
      if ('match' in s) {
        const found: Array<{ id: Identifier; type: string }> = [];
        for (const from of s.from) {
          const p = parseFieldPath(from);
          for (const rep of repsAt(scope.get(p.segment), p)) {
            const id = s.datatype === 'CX' ? cx(rep, this.ctx) : ei(rep, this.ctx);
            if (id?.system && id.value) found.push({ id, type: s.datatype === 'CX' ? comp(rep, 5) : '' });
          }
        }
        if (found.length === 0) continue;
        let chosen = found;
        if (s.combine !== 'or') {
          const preferred = (s.types ?? []).map((t) => found.find((f) => f.type === t)).find((f) => f !== undefined);
          chosen = [preferred ?? found[0]!];
        }
        const distinct = [...new Map(chosen.map((c) => [`${c.id.system}|${c.id.value}`, c.id])).values()];
        return { kind: 'conditional', query: identifierQuery(distinct), mode: s.mode };
      }
      const parts = s.key.map((k) => (k.startsWith('@') ? (this.latest.get(k.slice(1))?.key ?? '') : firstText(scope, k)));
      let id = createHash('sha256').update([resourceType, ...parts].join('\u0000')).digest('hex').slice(0, 40);
      for (let n = 2; this.ids.has(id); n++) id = createHash('sha256').update(`${id}#${n}`).digest('hex').slice(0, 40);
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
    const merge = this.structure.merge!;
    const p = parseFieldPath(merge.field);
    const prior = repsAt(scope.get(p.segment), p)[0];
    const location = { segment: seg.name, sequence: seg.occurrence, field: p.field };
    const id = prior ? cx(prior, this.ctx) : undefined;
    if (!id?.value) throw new V2DataError({ code: '101', text: `${merge.field} (prior patient identifier) is required`, location });
    const survivor = this.latest.get(merge.into);
    if (!survivor) throw new V2DataError({ code: '100', text: `${merge.segment} without a patient to merge into`, location });
    this.merges.push({ priorQuery: identifierQuery([id]), survivorUrl: survivor.fullUrl, references: merge.references, origin: location });
  }
}
