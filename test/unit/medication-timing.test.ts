/** Timing bounds of medication reminders (src/workflows/medication-timing.ts). */
import { describe, expect, it } from 'vitest';
import { timingBounds } from '../../src/workflows/medication-timing.js';

describe('timingBounds', () => {
  const anchor = '2026-01-01T00:00:00Z';
  const start = Date.parse(anchor);

  it('ends a bounding duration after the start, by UCUM code or by unit word', () => {
    expect(timingBounds({ repeat: { boundsDuration: { value: 2, code: 'd' } } }, anchor)).toEqual({ start, end: start + 2 * 86_400_000 });
    expect(timingBounds({ repeat: { boundsDuration: { value: 3, unit: 'hours' } } }, anchor)).toEqual({ start, end: start + 3 * 3_600_000 });
  });

  it('leaves the end open for a unit it does not know, including names every JavaScript object inherits', () => {
    for (const d of [{ value: 2, code: 'fortnight' }, { value: 2, code: 'constructor' }, { value: 2, unit: 'toString' }, { value: 2, code: '__proto__' }]) {
      expect(timingBounds({ repeat: { boundsDuration: d } }, anchor)).toEqual({ start, end: Number.POSITIVE_INFINITY });
    }
  });
});
