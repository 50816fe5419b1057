/**
 * The index rows of one resource as extraction (extract.ts) adds them, de-duplicated per
 * resource: a row with the table, parameter and values of an earlier one is dropped.
 */
import type { IndexRow } from '../store/resource-store.js';
import type { IndexTable } from '../store/schema.js';

/** Rows of one parameter scanned linearly for duplicates; past this many, a key set is built. */
const SCAN_LIMIT = 16;

/**
 * The rows of one resource, de-duplicated. A duplicate has the same table and parameter, so it can
 * only come from the parameter being extracted: `segment()` marks where that parameter's rows
 * start, and a new row is compared with the rows after the mark (a few, usually), without building
 * a key per row. Values compare as their strings, as the key of a large segment does.
 */
export class RowSink {
  readonly rows: IndexRow[] = [];
  private from = 0;
  private keys: Set<string> | undefined;

  /** Rows added from now on cannot duplicate the earlier ones. */
  segment(): void {
    this.from = this.rows.length;
    this.keys = undefined;
  }

  add(table: IndexTable, param: string, values: (string | number | null)[]): void {
    const rows = this.rows;
    if (this.keys === undefined) {
      for (let i = this.from; i < rows.length; i++) {
        const r = rows[i]!;
        if (r.param === param && r.table === table && sameValues(r.values, values)) return;
      }
      if (rows.length - this.from < SCAN_LIMIT) {
        rows.push({ table, param, values });
        return;
      }
      this.keys = new Set();
      for (let i = this.from; i < rows.length; i++) this.keys.add(rowKey(rows[i]!.table, rows[i]!.param, rows[i]!.values));
    }
    const key = rowKey(table, param, values);
    if (this.keys.has(key)) return;
    this.keys.add(key);
    rows.push({ table, param, values });
  }
}

function rowKey(table: string, param: string, values: readonly unknown[]): string {
  let key = table + '\u0000' + param;
  for (const v of values) key += '\u0000' + (v === null ? '\u0001' : v);
  return key;
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    // A number and its string (or NaN and NaN) are the same key.
    if ((typeof x === 'number' || typeof y === 'number') && x !== null && y !== null && String(x) === String(y)) continue;
    return false;
  }
  return true;
}
