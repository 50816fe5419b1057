/** UCUM canonical quantities, SearchParameter checks and layered registries, without a database. */
import type { Observation, SearchParameter } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { extractIndexRows } from '../../src/search/extract.js';
import { parseSearch } from '../../src/search/query.js';
import { LayeredRegistry } from '../../src/search/registry.js';
import { searchParameterIssues } from '../../src/search/sp-validate.js';
import { canonicalQuantity, canonicalUnit, UCUM_SYSTEM } from '../../src/search/ucum.js';

const obs = (value: number, code: string, system = UCUM_SYSTEM): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  code: { text: 'x' },
  valueQuantity: { value, unit: code, system, code },
});
const quantityRows = (o: Observation) => extractIndexRows(o).filter((r) => r.table === 'sp_quantity' && r.param.startsWith('value-quantity'));

describe('UCUM canonical units', () => {
  it('converts by exact decimal factors to base units', () => {
    expect(canonicalUnit('mg')).toEqual({ code: 'g', factor: '0.001' });
    expect(canonicalUnit('kg')).toEqual({ code: 'g', factor: '1000' });
    expect(canonicalUnit('ug/dL')).toEqual({ code: 'm-3.g', factor: '0.01' }); // not 0.009999999999999998
    expect(canonicalUnit('mm[Hg]')).toEqual({ code: 'm-1.s-2.g', factor: '133322' });
    expect(canonicalUnit('%')).toEqual({ code: '1', factor: '0.01' });
    expect(canonicalUnit('h')).toEqual({ code: 's', factor: '3600' });
    for (const none of ['[IU]', 'Cel', '[degF]', 'not-a-unit', '']) expect(canonicalUnit(none)).toBeUndefined();
  });

  it('converts a value and its implicit range', () => {
    expect(canonicalQuantity({ value: '6000', lo: '5999.5', hi: '6000.5' }, UCUM_SYSTEM, 'mg')).toEqual({
      system: UCUM_SYSTEM,
      code: 'g',
      value: '6',
      lo: '5.9995',
      hi: '6.0005',
    });
    expect(canonicalQuantity({ value: '1', lo: '0.5', hi: '1.5' }, 'http://other', 'mg')).toBeUndefined();
    expect(canonicalQuantity({ value: '1', lo: '0.5', hi: '1.5' }, UCUM_SYSTEM, '[IU]')).toBeUndefined();
  });

  it('indexes a canonical row under <code>:canonical, for UCUM quantities that convert', () => {
    expect(quantityRows(obs(6000, 'mg')).map((r) => [r.param, ...r.values])).toEqual([
      ['value-quantity', UCUM_SYSTEM, 'mg', 'mg', '5999.5', '6000.5'],
      ['value-quantity:canonical', UCUM_SYSTEM, 'g', null, '5.9995', '6.0005'],
    ]);
    expect(quantityRows(obs(5, 'g')).map((r) => r.param)).toEqual(['value-quantity', 'value-quantity:canonical']);
    expect(quantityRows(obs(5, '[IU]')).map((r) => r.param)).toEqual(['value-quantity']);
    expect(quantityRows(obs(5, 'mg', 'http://example.org/units')).map((r) => r.param)).toEqual(['value-quantity']);
    const open: Observation = { ...obs(5, 'mg'), valueQuantity: { value: 5, comparator: '<', system: UCUM_SYSTEM, code: 'mg' } };
    expect(quantityRows(open)[1]!.values).toEqual([UCUM_SYSTEM, 'g', null, '-Infinity', '0.0055']);
  });

  it('searches UCUM values in canonical form, anything else as given', () => {
    const filter = (q: string) => parseSearch('Observation', [...new URLSearchParams(q)], { strict: true }).filters[0]!;
    const f = filter(`value-quantity=gt5|${UCUM_SYSTEM}|kg`);
    expect(f.source).toEqual({ table: 'sp_quantity', indexParams: ['value-quantity:canonical'] });
    expect(f.anyOf).toEqual([{ kind: 'number', prefix: 'gt', value: '5000', lo: '4500', hi: '5500', system: UCUM_SYSTEM, code: 'g' }]);
    expect(filter('value-quantity=5').source).toEqual({ table: 'sp_quantity', indexParams: ['value-quantity'] });
    expect(filter('value-quantity=5||mg').source).toEqual({ table: 'sp_quantity', indexParams: ['value-quantity'] });
    // One value that does not convert: all are matched as given.
    expect(filter(`value-quantity=5|${UCUM_SYSTEM}|mg,5|${UCUM_SYSTEM}|[IU]`).source).toEqual({ table: 'sp_quantity', indexParams: ['value-quantity'] });
  });

  it('extracts at a comparable rate with canonical rows (conversions cached per unit)', () => {
    const sample = Array.from({ length: 2000 }, (_, i) => obs(i + 0.5, ['mg', 'g', 'mmol/L', 'kg', '/min'][i % 5]!));
    const time = () => {
      const t0 = performance.now();
      for (const o of sample) extractIndexRows(o);
      return performance.now() - t0;
    };
    time(); // warm up (compiles the parameters, fills the unit cache)
    const ms = Math.min(time(), time(), time());
    expect(ms / sample.length).toBeLessThan(0.5); // well under half a millisecond per Observation
  });
});

describe('SearchParameter checks', () => {
  const base: SearchParameter = {
    resourceType: 'SearchParameter',
    url: 'http://example.org/sp',
    name: 'x',
    status: 'active',
    description: 'x',
    code: 'x',
    base: ['Patient'],
    type: 'string',
    expression: 'Patient.name.given',
  };
  const problems = (changes: Partial<SearchParameter>) => searchParameterIssues({ ...base, ...changes } as SearchParameter).map((i) => i.diagnostics).join('\n');

  it('accepts usable parameters', () => {
    expect(problems({})).toBe('');
    expect(problems({ base: ['Resource'], expression: 'Resource.meta.source', type: 'uri' })).toBe('');
    expect(problems({ type: 'reference', expression: 'Patient.generalPractitioner', target: ['Practitioner'] })).toBe('');
    expect(problems({ status: 'retired', type: 'special', expression: undefined })).toBe(''); // never loaded
  });

  it('rejects what cannot be searched', () => {
    expect(problems({ expression: 'Patient.name.(' })).toMatch(/does not compile/);
    expect(problems({ expression: undefined })).toMatch(/expression is required/);
    expect(problems({ base: ['Bogus'] as unknown as SearchParameter['base'] })).toMatch(/'Bogus' is not an R4 resource type/);
    expect(problems({ type: 'special' })).toMatch(/'special' is not supported/);
    expect(problems({ code: '_mine' })).toMatch(/code/);
    expect(problems({ code: 'a:b' })).toMatch(/code/);
    expect(problems({ target: ['Nope'] as unknown as SearchParameter['target'] })).toMatch(/'Nope'/);
    expect(problems({ base: ['Patient', 'Observation'] })).toMatch(/no part that applies to base 'Observation'/);
  });
});

describe('LayeredRegistry', () => {
  const sp = (code: string, base: string[], expression: string): SearchParameter =>
    ({ resourceType: 'SearchParameter', url: `http://x/${code}`, name: code, status: 'active', description: code, code, base, type: 'token', expression }) as SearchParameter;

  it('layers custom parameters over the core ones, per type, with stable maps', () => {
    const r = new LayeredRegistry([sp('src', ['Resource'], 'Resource.meta.source'), sp('gender', ['Patient'], 'Patient.name.use')], 1);
    expect(r.paramsFor('Observation').get('src')!.expression).toBe('Observation.meta.source');
    expect(r.paramsFor('Binary').has('src')).toBe(true);
    expect(r.paramsFor('Patient').get('gender')!.expression).toBe('Patient.name.use'); // replaces the core one
    expect(r.paramsFor('Patient').has('birthdate')).toBe(true);
    expect(r.paramsFor('Patient')).toBe(r.paramsFor('Patient'));
    expect(new LayeredRegistry([], 0).paramsFor('Patient').get('gender')!.expression).toBe('Patient.gender');
  });
});
