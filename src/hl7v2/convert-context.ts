/**
 * What data type converters share: the mappings, the sender (for identifier systems and time
 * zones), vocabulary look-ups, and the errors that become ERR segments.
 */
import type { Identifier, Resource } from 'fhir/r4.js';
import { createRequire } from 'node:module';
import type { FieldRule, MappingConfig, Vocabulary, VocabularyEntry } from './mapping-config.js';
import { comp, type Rep } from './parser.js';
import { parseDtm, toFhirDate, toFhirDateTime, toFhirInstant } from './datetime.js';

export interface ConvertContext {
  config: MappingConfig;
  /** Sending facility (MSH-4.1), else sending application (MSH-3.1). */
  sender: string;
  /** Zone of times sent without an offset (facilities.json). */
  timezone: string;
  /** Register a resource the message refers to (XCN → Practitioner): found or created by identifier. Returns its fullUrl. */
  addResource(resource: Resource, identifier: Identifier): string;
}

/** A data error in a field: becomes AE with ERR naming the field (and component). */
export class FieldError extends Error {
  constructor(
    /** HL7 table 0357 code. */
    readonly code: string,
    message: string,
    readonly component?: number,
  ) {
    super(message);
  }
}

/** A value whose FHIR type is decided by the data (SN → Quantity, Range, Ratio or string) for a value[x] target. */
export class Typed {
  constructor(
    readonly type: string,
    readonly value: unknown,
  ) {}
}

/** Vocabulary look-ups by table and code: the same few codes come in every message. */
const lookups = new WeakMap<Vocabulary, Map<string, Readonly<VocabularyEntry> | undefined>>();
const CACHE_LIMIT = 10_000;

/** The entry for a code (shared between calls: read it, never change it). */
export function lookup(ctx: ConvertContext, table: string, code: string): Readonly<VocabularyEntry> | undefined {
  const vocabulary = ctx.config.vocabularies.get(table);
  if (!vocabulary || code === '') return undefined;
  let cache = lookups.get(vocabulary);
  if (!cache) lookups.set(vocabulary, (cache = new Map()));
  let found = cache.get(code);
  if (found === undefined && !cache.has(code)) {
    found = lookupIn(vocabulary, code);
    if (cache.size < CACHE_LIMIT) cache.set(code, found);
  }
  return found;
}

function lookupIn(vocabulary: Vocabulary, code: string): VocabularyEntry | undefined {
  const entry = vocabulary.map[code] ?? vocabulary.map[code.toUpperCase()];
  if (entry === undefined) {
    return vocabulary.passthrough ? { code, system: vocabulary.system } : undefined;
  }
  const e = typeof entry === 'string' ? { code: entry } : entry;
  return { ...e, system: e.system ?? vocabulary.system };
}

/** A code through the rule's vocabulary (if any), honouring the rule's 'unmapped' policy. */
export function mapCode(ctx: ConvertContext, rule: FieldRule, code: string, component?: number): Readonly<VocabularyEntry> | undefined {
  if (code === '') return undefined;
  if (!rule.vocabulary) return { code };
  const entry = lookup(ctx, rule.vocabulary, code);
  if (entry) return entry;
  if (rule.unmapped === 'error') throw new FieldError('103', `'${code}' is not a known value (table ${rule.vocabulary})`, component);
  if (rule.unmapped === 'keep') return { code };
  return undefined;
}

export function codingSystem(ctx: ConvertContext, name: string): string | undefined {
  if (name === '') return undefined;
  const cs = ctx.config.codingSystems;
  const known = cs.names[name] ?? cs.names[name.toUpperCase()];
  if (known) return known;
  for (const p of cs.patterns) if (p.regex.test(name)) return name.replace(p.regex, p.uri);
  if (/^(https?:\/\/|urn:)\S+$/.test(name)) return name;
  return undefined;
}

/** An HD (namespace id, universal id, universal id type) read from a repetition or a component's subcomponents. */
export interface Hd {
  namespace: string;
  universalId: string;
  universalIdType: string;
}

/** The HD in component c's subcomponents (CX.4, XCN.9), read in place. */
export function hdAt(rep: Rep | undefined, c: number): Hd {
  const sub = rep?.[c - 1];
  return { namespace: sub?.[0] ?? '', universalId: sub?.[1] ?? '', universalIdType: sub?.[2] ?? '' };
}

const fill = (template: string, values: Record<string, string>) => template.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(values[k] ?? ''));

/** identifierSystem results per configuration: a feed repeats the same few assigning authorities. */
const systems = new WeakMap<MappingConfig, Map<string, string>>();

/** Identifier.system for an assigning authority (mappings/identifier-systems.json). */
export function identifierSystem(ctx: ConvertContext, hd: Hd): string {
  let cache = systems.get(ctx.config);
  if (!cache) systems.set(ctx.config, (cache = new Map()));
  const key = `${ctx.sender}\u0000${hd.namespace}\u0000${hd.universalId}\u0000${hd.universalIdType}`;
  let system = cache.get(key);
  if (system === undefined) {
    system = systemFor(ctx, hd);
    // A NUL inside a value (\X00\) could make two different inputs one key: not cached.
    if (cache.size < CACHE_LIMIT && !`${ctx.sender}${hd.namespace}${hd.universalId}${hd.universalIdType}`.includes('\u0000')) cache.set(key, system);
  }
  return system;
}

function systemFor(ctx: ConvertContext, hd: Hd): string {
  const tables = ctx.config.identifierSystems;
  const own = tables.facilities[ctx.sender];
  const keys = [hd.namespace, hd.universalId].filter((k) => k !== '');
  for (const key of keys) {
    const mapped = own?.authorities?.[key] ?? tables.default.authorities?.[key];
    if (mapped) return mapped;
  }
  const type = hd.universalIdType.toUpperCase();
  if (hd.universalId && type === 'ISO' && /^[0-2](\.\d+)+$/.test(hd.universalId)) return `urn:oid:${hd.universalId}`;
  if (hd.universalId && type === 'UUID') return `urn:uuid:${hd.universalId.toLowerCase()}`;
  if (hd.universalId && (type === 'URI' || type === 'URL') && /^\S+:\S+$/.test(hd.universalId)) return hd.universalId;
  const template = own?.authorityTemplate ?? tables.default.authorityTemplate ?? 'urn:carebridge:hl7v2:authority:{authority}';
  if (keys.length > 0) return fill(template, { authority: keys[0]! });
  const unscoped = own?.unscopedTemplate ?? tables.default.unscopedTemplate ?? 'urn:carebridge:hl7v2:sender:{sender}';
  return fill(unscoped, { sender: ctx.sender });
}

// UCUM: a unit sent without a coding system is taken as UCUM when it is a valid UCUM expression.
const require = createRequire(import.meta.url);
let ucum: { validateUnitString(unit: string): { status: string } } | undefined;
const ucumCache = new Map<string, boolean>();

export function isUcum(unit: string): boolean {
  let valid = ucumCache.get(unit);
  if (valid === undefined) {
    ucum ??= (require('@lhncbc/ucum-lhc') as { UcumLhcUtils: { getInstance(): NonNullable<typeof ucum> } }).UcumLhcUtils.getInstance();
    try {
      valid = ucum.validateUnitString(unit).status === 'valid';
    } catch {
      valid = false;
    }
    if (ucumCache.size < 10_000) ucumCache.set(unit, valid);
  }
  return valid;
}

/** Drop undefined, empty strings, empty arrays and empty objects (recursively). */
export function clean<T>(value: T): T | undefined {
  if (value === '' || value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || value instanceof Typed) return value;
  // Loops rather than entries/map/filter: this runs for nearly every converted value.
  if (Array.isArray(value)) {
    const items: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      const c = clean(value[i] as unknown);
      if (c !== undefined) items.push(c);
    }
    return (items.length ? items : undefined) as T | undefined;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  let out: Record<string, unknown> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const c = clean(obj[k]);
    if (c !== undefined) (out ??= {})[k] = c;
  }
  return out as T | undefined;
}

export function text(rep: Rep, c = 1): string {
  return comp(rep, c).trim();
}

export function decimal(value: string, component?: number): number | undefined {
  const v = value.trim();
  if (v === '') return undefined;
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(v)) throw new FieldError('102', `'${v}' is not a number`, component);
  return Number(v);
}

export function temporal(kind: 'date' | 'dateTime' | 'instant', value: string, ctx: ConvertContext, component?: number): string | undefined {
  const v = value.trim();
  if (v === '') return undefined;
  const parsed = parseDtm(v);
  if (!parsed) throw new FieldError('102', `'${v}' is not a valid date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])`, component);
  if (kind === 'date') return toFhirDate(parsed);
  return kind === 'instant' ? toFhirInstant(parsed, ctx.timezone) : toFhirDateTime(parsed, ctx.timezone);
}
