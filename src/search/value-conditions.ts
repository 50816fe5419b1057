/**
 * One search value (a single comma-separated alternative, escapes kept) parsed into the Condition
 * its parameter type matches on (search.html#token, #reference, #date, #number, #quantity,
 * #missing). Shared by the plain parameters of query-parse.ts and the parts of composites
 * (composite.ts), so a component parses exactly as the parameter of its type would.
 * `bad` makes the 400 naming the parameter.
 */
import { splitEscaped, unescape } from './escapes.js';
import type { Condition, Prefix } from './query-types.js';
import { decimalRange, MAX_DATE, MIN_DATE, parseDate } from './values.js';

type Bad = (m: string) => Error;

const PREFIXES = new Set<Prefix>(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);
const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;

/** `:missing=true|false`, one condition per value. */
export function missingConditions(rawValues: string[], bad: Bad): Condition[] {
  return rawValues.map((v): Condition => {
    if (v !== 'true' && v !== 'false') throw bad(`:missing takes true or false, got '${v}'`);
    return { kind: 'missing', missing: v === 'true' };
  });
}

export function tokenCondition(v: string, bad: Bad): Condition {
  const parts = splitEscaped(v, '|');
  if (parts.length === 1) return { kind: 'token', code: unescape(parts[0]!) };
  if (parts.length > 2) throw bad(`a token is [system]|[code], got '${v}'`);
  const system = unescape(parts[0]!);
  const code = unescape(parts[1]!);
  if (!system && !code) throw bad(`'|' needs a system or a code`);
  return { kind: 'token', system: system || null, code: code || undefined };
}

/** `v` already unescaped; `typeModifier`: the resource type given as modifier (`subject:Patient=p1`). */
export function referenceCondition(v: string, typeModifier: string | undefined, bad: Bad): Condition {
  if (typeModifier) {
    const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(v);
    if (m && m[1] === typeModifier) return { kind: 'reference', type: typeModifier, id: m[2] };
    if (!ID_RE.test(v)) throw bad(`'${v}' is not a resource id`);
    return { kind: 'reference', type: typeModifier, id: v };
  }
  if (/^[a-z][a-z0-9+.-]*:/.test(v)) {
    const abs = /^(.*\/[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})\/_history\/([A-Za-z0-9\-.]{1,64})$/.exec(v);
    if (abs) return { kind: 'reference', url: abs[1], version: abs[2] };
    const bar = v.lastIndexOf('|');
    if (bar > 0) return { kind: 'reference', url: v.slice(0, bar), ...(bar < v.length - 1 ? { version: v.slice(bar + 1) } : {}) };
    return { kind: 'reference', url: v };
  }
  const rel = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/.exec(v);
  if (rel) return { kind: 'reference', type: rel[1], id: rel[2], ...(rel[3] ? { version: rel[3] } : {}) };
  if (ID_RE.test(v)) return { kind: 'reference', id: v };
  throw bad(`'${v}' is not a reference (Type/id, id or absolute URL)`);
}

function prefixed(v: string): [Prefix, string] {
  const p = v.slice(0, 2);
  if (/^[a-z]{2}/.test(p)) return [p as Prefix, v.slice(2)];
  return ['eq', v];
}

function checkPrefix(prefix: string, v: string, bad: Bad): asserts prefix is Prefix {
  if (!PREFIXES.has(prefix as Prefix)) throw bad(`unknown prefix '${prefix}' in '${v}'`);
}

/** `now`: the search's clock (SearchOptions.now), for `ap`; the current time when undefined. */
export function dateCondition(raw: string, bad: Bad, now: Date | undefined): Condition {
  const v = unescape(raw);
  const [prefix, text] = prefixed(v);
  checkPrefix(prefix, v, bad);
  const d = parseDate(text);
  if (!d) throw bad(`'${text}' is not a date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][Z|±hh:mm])`);
  if (prefix !== 'ap') return { kind: 'date', prefix, lo: d.lo, hi: d.hi };
  // ap: widen by 10% of the distance between now and the searched date.
  const nowMs = (now ?? new Date()).getTime();
  const gap = Math.abs(nowMs - d.loMs) * 0.1;
  const lo = d.loMs - gap;
  const hi = d.hiMs + gap;
  return {
    kind: 'date',
    prefix,
    lo: lo <= Date.parse(MIN_DATE) ? MIN_DATE : new Date(Math.floor(lo)).toISOString(),
    hi: hi >= Date.parse(MAX_DATE) ? MAX_DATE : new Date(Math.ceil(hi)).toISOString(),
  };
}

/** `v` already unescaped. */
export function numberCondition(v: string, bad: Bad): Condition & { kind: 'number' } {
  const [prefix, text] = prefixed(v);
  checkPrefix(prefix, v, bad);
  const r = decimalRange(text);
  if (!r) throw bad(`'${text}' is not a number`);
  return { kind: 'number', prefix, value: r.value, lo: r.lo, hi: r.hi };
}

/** A quantity as given (exact system and code); UCUM canonical forms are ucum.ts's business. */
export function quantityCondition(raw: string, bad: Bad): Condition {
  const parts = splitEscaped(raw, '|');
  if (parts.length !== 1 && parts.length !== 3) throw bad(`a quantity is [prefix]number[|system|code], got '${unescape(raw)}'`);
  const n = numberCondition(unescape(parts[0]!), bad);
  if (parts.length === 3) {
    const system = unescape(parts[1]!);
    const code = unescape(parts[2]!);
    if (system) n.system = system;
    if (code) n.code = code;
  }
  return n;
}
