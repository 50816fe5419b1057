/**
 * HL7 v2 data types to FHIR data types, after the V2-to-FHIR IG data type maps
 * (CX[Identifier], EI[Identifier], CWE[CodeableConcept], XPN[HumanName], XAD[Address],
 * XTN[ContactPoint], XCN[Practitioner], DTM[dateTime], SN[Quantity/Range/Ratio], …).
 * A converter reads one repetition (or, for a component path, that component) and returns the
 * FHIR value, undefined when nothing is valued, or throws FieldError for malformed data.
 */
import type { CodeableConcept, Coding, Identifier, Quantity } from 'fhir/r4.js';
import type { FieldRule } from './mapping-config.js';
import { comp, subRep, type Field, type Rep } from './parser.js';
import { clean, codingSystem, decimal, FieldError, hdAt, identifierSystem, isUcum, lookup, mapCode, temporal as when, text, Typed, type ConvertContext } from './convert-context.js';
import { PERSON_CONVERTERS } from './datatypes-person.js';

export type Converter = (rep: Rep, ctx: ConvertContext, rule: FieldRule) => unknown;

const UCUM = 'http://unitsofmeasure.org';

/** CWE components per coding: [code, display, system name, version] (identifier, alternate, second alternate). */
const CODINGS = [
  [1, 2, 3, 7],
  [4, 5, 6, 8],
  [10, 11, 12, 13],
] as const;

/** A Coding with only the valued elements, in FHIR order (what clean() of the full object gives). */
function coding(system: string | undefined, version: string, code: string, display: string): Coding {
  const out: Coding = {};
  if (system) out.system = system;
  if (version) out.version = version;
  out.code = code;
  if (display) out.display = display;
  return out;
}

export function codeableConcept(rep: Rep, ctx: ConvertContext, rule: FieldRule): CodeableConcept | undefined {
  let codings: Coding[] = [];
  for (const [c, t, s, v] of CODINGS) {
    const code = text(rep, c);
    if (!code) continue;
    codings.push(coding(codingSystem(ctx, text(rep, s)), text(rep, v), code, text(rep, t)));
  }
  const originalText = text(rep, 9) || (codings.length === 0 ? text(rep, 2) : '');
  if (rule.vocabulary) {
    const mapped = mapCode(ctx, rule, text(rep, 1), 1);
    if (mapped && mapped.system) {
      // The mapped coding first; originals kept when they name their system.
      const keep = codings.filter((c) => c.system && !(c.system === mapped.system && c.code === mapped.code));
      codings = [clean({ system: mapped.system, code: mapped.code, display: mapped.display })!, ...keep];
    }
  }
  if (codings.length === 0 && !originalText) return undefined;
  const concept: CodeableConcept = {};
  if (codings.length > 0) concept.coding = codings;
  if (originalText) concept.text = originalText;
  return concept;
}

function identifierType(code: string): CodeableConcept | undefined {
  return code ? { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code }] } : undefined;
}

/** CX → Identifier (value, system from the assigning authority, type, period). */
export function cx(rep: Rep, ctx: ConvertContext): Identifier | undefined {
  const value = text(rep, 1);
  if (!value) return undefined;
  // Built as clean() would leave it: only valued elements, in this order.
  const type = identifierType(text(rep, 5));
  const system = identifierSystem(ctx, hdAt(rep, 4));
  const start = when('date', comp(rep, 7), ctx, 7);
  const end = when('date', comp(rep, 8), ctx, 8);
  const id: Identifier = {};
  if (type) id.type = type;
  if (system) id.system = system;
  id.value = value;
  if (start || end) {
    id.period = {};
    if (start) id.period.start = start;
    if (end) id.period.end = end;
  }
  return id;
}

/** EI → Identifier (value, system from namespace id / universal id). */
export function ei(rep: Rep, ctx: ConvertContext): Identifier | undefined {
  const value = text(rep, 1);
  if (!value) return undefined;
  return { system: identifierSystem(ctx, { namespace: text(rep, 2), universalId: text(rep, 3), universalIdType: text(rep, 4) }), value };
}

/** Units (a CWE) as the unit part of a Quantity; UCUM when declared or when the code is valid UCUM. */
export function units(rep: Rep, ctx: ConvertContext): Partial<Quantity> | undefined {
  const code = text(rep, 1);
  const label = text(rep, 2);
  if (!code && !label) return undefined;
  const declared = codingSystem(ctx, text(rep, 3));
  // A bare number ('43^mg/hr': a local unit code) is valid UCUM syntax but never meant as a unit.
  const system = declared ?? (code && !/^\d+$/.test(code) && isUcum(code) ? UCUM : undefined);
  return clean({ unit: label || code, system, code: system ? code : undefined });
}

const COMPARATORS = new Set(['<', '>', '<=', '>=']);

/** SN (comparator, num1, separator/suffix, num2) → Quantity, Range, Ratio or string. */
function sn(rep: Rep): Typed | undefined {
  const comparator = text(rep, 1);
  const num1 = text(rep, 2);
  const separator = text(rep, 3);
  const num2 = text(rep, 4);
  if (!comparator && !num1 && !separator && !num2) return undefined;
  const asText = () => new Typed('string', [comparator, num1, separator, num2].filter(Boolean).join(' '));
  if (comparator === '<>' || separator === '+' || separator === '.') return asText();
  if (comparator && !COMPARATORS.has(comparator) && comparator !== '=') throw new FieldError('102', `'${comparator}' is not an SN comparator`, 1);
  if (separator === ':' || separator === '/') {
    return new Typed('Ratio', { numerator: { value: decimal(num1, 2) }, denominator: { value: decimal(num2, 4) } });
  }
  if (separator === '-') return new Typed('Range', { low: { value: decimal(num1, 2) }, high: { value: decimal(num2, 4) } });
  const value = decimal(num1, 2);
  if (value === undefined) return asText();
  return new Typed('Quantity', clean({ value, comparator: COMPARATORS.has(comparator) ? comparator : undefined }));
}

function booleanOf(rep: Rep, ctx: ConvertContext, rule: FieldRule): boolean | undefined {
  const code = text(rep, 1);
  if (!code) return undefined;
  const entry = lookup(ctx, rule.vocabulary ?? 'YesNo', code);
  if (!entry) {
    if (rule.unmapped === 'error') throw new FieldError('103', `'${code}' is not Y or N`);
    return undefined;
  }
  return entry.code === 'true';
}

export const CONVERTERS: Record<string, Converter> = {
  string: (rep) => text(rep) || undefined,
  code: (rep, ctx, rule) => mapCode(ctx, rule, text(rep))?.code,
  Coding: (rep, ctx, rule) => {
    if (rule.vocabulary) {
      const e = mapCode(ctx, rule, text(rep));
      return e && clean({ system: e.system, code: e.code, display: e.display });
    }
    return codeableConcept(rep, ctx, rule)?.coding?.[0];
  },
  boolean: booleanOf,
  integer: (rep) => {
    const v = text(rep);
    if (v === '') return undefined;
    if (!/^[+-]?\d+$/.test(v)) throw new FieldError('102', `'${v}' is not an integer`);
    return Number(v);
  },
  decimal: (rep) => decimal(text(rep)),
  date: (rep, ctx) => when('date', comp(rep, 1), ctx),
  dateTime: (rep, ctx) => when('dateTime', comp(rep, 1), ctx),
  instant: (rep, ctx) => when('instant', comp(rep, 1), ctx),
  CWE: codeableConcept,
  CE: codeableConcept,
  CNE: codeableConcept,
  CF: codeableConcept,
  CX: cx,
  EI: ei,
  HD: (rep) => text(rep, 1) || text(rep, 2) || undefined,
  units,
  CQ: (rep, ctx) => clean({ value: decimal(comp(rep, 1), 1), ...units(subRep(rep, 2), ctx) }),
  NM: (rep) => {
    const value = decimal(text(rep));
    return value === undefined ? undefined : { value };
  },
  SN: sn,
  time: (rep) => {
    const v = text(rep);
    if (v === '') return undefined;
    const m = /^(\d{2})(\d{2})?(\d{2})?(\.\d{1,4})?(?:[+-]\d{4})?$/.exec(v);
    if (!m || Number(m[1]) > 23 || Number(m[2] ?? 0) > 59 || Number(m[3] ?? 0) > 59) throw new FieldError('102', `'${v}' is not a time (HH[MM[SS[.S]]])`);
    return `${m[1]}:${m[2] ?? '00'}:${m[3] ?? '00'}${m[4] ?? ''}`;
  },
  DR: (rep, ctx) => clean({ start: when('dateTime', comp(rep, 1, 1), ctx, 1), end: when('dateTime', comp(rep, 2, 1), ctx, 2) }),
  ...PERSON_CONVERTERS,
};

/** Converters that read all repetitions of a field at once. */
export const FIELD_CONVERTERS: Partial<Record<string, (field: Field, ctx: ConvertContext, rule: FieldRule) => unknown>> = {
  /** TX/FT/ST lines: the repetitions joined by line breaks. */
  text: (field) => {
    const lines = field.map((rep) => comp(rep, 1));
    const joined = lines.join('\n').trim();
    return joined === '' ? undefined : joined;
  },
};
