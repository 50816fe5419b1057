/**
 * FHIR → HL7 v2 data types for outbound messages: the reverse of datatypes*.ts, reading the same
 * tables (vocabulary.json, coding-systems.json, identifier-systems.json) backwards, so that a
 * message we send carries the codes and assigning authorities we would accept back.
 *
 * An encoder returns one repetition (components × subcomponents, unescaped) or undefined.
 */
import type { Address, CodeableConcept, Coding, ContactPoint, HumanName, Identifier, Quantity, Reference } from 'fhir/r4.js';
import type { MappingConfig } from '../mapping-config.js';
import type { Rep } from '../parser.js';

export type Encoder = (value: unknown, tables: ReverseTables) => Rep | undefined;

/** The inbound tables read backwards (built once per mapping config). */
export class ReverseTables {
  private readonly vocab = new Map<string, Map<string, string>>();
  private readonly systemNames = new Map<string, string>();
  private readonly authorities = new Map<string, string>();

  constructor(readonly config: MappingConfig) {
    for (const [name, table] of config.vocabularies) {
      const reverse = new Map<string, string>();
      for (const [v2, entry] of Object.entries(table.map)) {
        const code = typeof entry === 'string' ? entry : entry.code;
        // The first v2 code listed for a FHIR code wins (AdministrativeSex: other → O, not A or N).
        if (!reverse.has(code)) reverse.set(code, v2);
      }
      this.vocab.set(name, reverse);
    }
    for (const [name, uri] of Object.entries(config.codingSystems.names)) if (!this.systemNames.has(uri)) this.systemNames.set(uri, name);
    for (const [authority, system] of Object.entries(config.identifierSystems.default.authorities ?? {})) {
      if (!this.authorities.has(system)) this.authorities.set(system, authority);
    }
  }

  /** v2 code of a FHIR code in a vocabulary table; undefined when the table has none. */
  v2Code(table: string, code: string): string | undefined {
    const reverse = this.vocab.get(table);
    if (!reverse) throw new Error(`HL7 v2 outbound mappings: unknown vocabulary ${table}`);
    return reverse.get(code) ?? (this.config.vocabularies.get(table)?.passthrough ? code : undefined);
  }

  /** CWE.3 name of a code system URI (LN for LOINC, HL70001 for v2-0001…), else the URI itself. */
  systemName(uri: string | undefined): string {
    if (!uri) return '';
    const named = this.systemNames.get(uri);
    if (named) return named;
    const table = /^http:\/\/terminology\.hl7\.org\/CodeSystem\/v2-(\d{4})$/.exec(uri);
    return table ? `HL7${table[1]}` : uri;
  }

  /** CX.4 / EI.2-4 assigning authority (HD components) of an Identifier.system. */
  authority(system: string | undefined): string[] {
    if (!system) return [];
    const known = this.authorities.get(system);
    if (known) return [known];
    const template = /^urn:carebridge:hl7v2:authority:(.+)$/.exec(system);
    if (template) return [decodeURIComponent(template[1]!)];
    if (system.startsWith('urn:oid:')) return ['', system.slice(8), 'ISO'];
    if (system.startsWith('urn:uuid:')) return ['', system.slice(9), 'UUID'];
    return ['', system, 'URI'];
  }
}

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));
const one = (...components: string[]): Rep | undefined => (components.some((c) => c !== '') ? components.map((c) => [c]) : undefined);

/** FHIR date, dateTime or instant → v2 DTM (YYYY[MM[DD[HHMM[SS[.S]]]]][+/-ZZZZ]). */
export function dtm(value: unknown): string {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,4})?\d*)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(str(value));
  if (!m) return '';
  const [, y, mo = '', d = '', h = '', mi = '', s = '', frac = '', zone] = m;
  const offset = zone === undefined ? '' : zone === 'Z' ? '+0000' : zone.replace(':', '');
  return `${y}${mo}${d}${h}${mi}${s}${s ? frac : ''}${offset}`;
}

function cx(value: unknown, t: ReverseTables): Rep | undefined {
  const id = value as Identifier;
  if (!id?.value) return undefined;
  const typeCode = id.type?.coding?.find((c) => c.system === 'http://terminology.hl7.org/CodeSystem/v2-0203')?.code ?? '';
  return [[id.value], [''], [''], t.authority(id.system), [typeCode]];
}

function ei(value: unknown, t: ReverseTables): Rep | undefined {
  const id = value as Identifier;
  if (!id?.value) return undefined;
  const [ns = '', uid = '', type = ''] = t.authority(id.system);
  return one(id.value, ns, uid, type);
}

function coding(c: Coding | undefined, t: ReverseTables): string[] {
  return c ? [str(c.code), str(c.display), c.code ? t.systemName(c.system) : ''] : ['', '', ''];
}

function cwe(value: unknown, t: ReverseTables): Rep | undefined {
  const cc = value as CodeableConcept & Coding;
  // A Coding given directly (Encounter.class) or a CodeableConcept: first and second coding.
  const codings = cc?.coding ?? (cc?.code ? [cc] : []);
  const [first, second] = [codings[0], codings[1]];
  const components = [...coding(first, t), ...(second ? coding(second, t) : ['', '', ''])];
  if (!first) components[1] = str(cc?.text);
  if (cc?.text && first) components.push('', '', cc.text);
  return one(...components.map(str));
}

function xpn(value: unknown, t: ReverseTables): Rep | undefined {
  const n = value as HumanName;
  const use = n?.use ? (t.v2Code('NameType', n.use) ?? '') : '';
  return one(str(n?.family), str(n?.given?.[0]), (n?.given ?? []).slice(1).join(' '), str(n?.suffix?.[0]), str(n?.prefix?.[0]), '', use);
}

function xad(value: unknown, t: ReverseTables): Rep | undefined {
  const a = value as Address;
  const type = a?.use ? (t.v2Code('AddressUse', a.use) ?? '') : '';
  return one(str(a?.line?.[0]), str(a?.line?.[1]), str(a?.city), str(a?.state), str(a?.postalCode), str(a?.country), type, '', str(a?.district));
}

function xtn(value: unknown, t: ReverseTables): Rep | undefined {
  const c = value as ContactPoint;
  if (!c?.value) return undefined;
  const use = c.use ? (t.v2Code('TelecommunicationUse', c.use) ?? '') : '';
  if (c.system === 'email') return one('', use, 'Internet', c.value);
  const equipment = c.use === 'mobile' ? 'CP' : c.system ? (t.v2Code('TelecommunicationEquipment', c.system) ?? '') : '';
  // XTN.1 (the number as text) is deprecated but still what most receivers read; XTN.12 carries it too.
  return one(c.value, use, equipment, '', '', '', '', '', '', '', '', c.value);
}

/** XCN from a Reference: XCN.1 its identifier (or the referenced id), XCN.2 its display. */
function xcn(value: unknown, t: ReverseTables): Rep | undefined {
  const r = value as Reference;
  const id = r?.identifier?.value ?? r?.reference?.split('/').pop() ?? '';
  const authority = r?.identifier ? t.authority(r.identifier.system) : [];
  if (!id && !r?.display) return undefined;
  return [[id], [str(r?.display)], [''], [''], [''], [''], [''], [''], authority];
}

function quantityValue(value: unknown): Rep | undefined {
  const q = value as Quantity;
  return typeof value === 'number' ? one(String(value)) : one(str(q?.value));
}

function quantityUnit(value: unknown, t: ReverseTables): Rep | undefined {
  const q = value as Quantity;
  if (!q?.unit && !q?.code) return undefined;
  return one(str(q.code ?? q.unit), str(q.unit), q.code ? t.systemName(q.system) : '');
}

export const ENCODERS: Record<string, Encoder> = {
  string: (v) => one(str(v)),
  DTM: (v) => one(dtm(v)),
  CX: cx,
  EI: ei,
  CWE: cwe,
  XPN: xpn,
  XAD: xad,
  XTN: xtn,
  XCN: xcn,
  NM: quantityValue,
  CQ_UNITS: quantityUnit,
};
