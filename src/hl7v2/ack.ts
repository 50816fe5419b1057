/**
 * Original-mode acknowledgements (HL7 v2 chapter 2): MSA-1 AA when the message was processed,
 * AE when its content could not be processed (with ERR naming the segment and field), AR when it
 * was rejected (unsupported type, version or processing id, or unreadable). HL7 table 0357 gives
 * the error codes.
 */
import { escapeText, type Header, type Separators } from './parser.js';

export type AckCode = 'AA' | 'AE' | 'AR';

/** ERR-2 (ERL): where the error is; 1-based numbers. */
export interface ErrorLocation {
  segment: string;
  sequence?: number;
  field?: number;
  repetition?: number;
  component?: number;
  subcomponent?: number;
}

export interface V2Issue {
  /** HL7 table 0357: 100 segment sequence, 101 required field missing, 102 data type, 103 table value not found, 200 unsupported message type, 201 unsupported event, 203 unsupported version, 204 unknown key, 207 internal error. */
  code: string;
  text: string;
  location?: ErrorLocation;
}

const ERROR_TEXT: Record<string, string> = {
  '100': 'Segment sequence error',
  '101': 'Required field missing',
  '102': 'Data type error',
  '103': 'Table value not found',
  '104': 'Value too long',
  '200': 'Unsupported message type',
  '201': 'Unsupported event code',
  '202': 'Unsupported processing id',
  '203': 'Unsupported version id',
  '204': 'Unknown key identifier',
  '205': 'Duplicate key identifier',
  '206': 'Application record locked',
  '207': 'Application internal error',
};

/** The message's content cannot be processed: AE, nothing written but the message row. */
export class V2DataError extends Error {
  constructor(readonly issue: V2Issue) {
    super(issue.text);
  }
}

/** The message is refused as a whole: AR. */
export class V2RejectError extends Error {
  constructor(readonly issue: V2Issue) {
    super(issue.text);
  }
}

/** HL7 timestamp of a Date in local time with offset: YYYYMMDDHHMMSS+ZZZZ. */
export function hl7Timestamp(d = new Date()): string {
  const p = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  return (
    `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}` +
    `${sign}${p(Math.trunc(Math.abs(off) / 60))}${p(Math.abs(off) % 60)}`
  );
}

let counter = 0;
/** A control id for messages we send: unique in this process and short (MSH-10 is 20 characters before 2.7). */
export function newControlId(): string {
  counter = (counter + 1) % 1_679_616; // 36^4
  return `CB${Date.now().toString(36).toUpperCase()}${counter.toString(36).toUpperCase().padStart(4, '0')}`;
}

function versionAtLeast(version: string | undefined, major: number, minor: number, patch = 0): boolean {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version ?? '');
  if (!m) return true;
  const v = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  const w = [major, minor, patch];
  for (let i = 0; i < 3; i++) if (v[i] !== w[i]) return v[i]! > w[i]!;
  return true;
}

export interface AckInput {
  separators: Separators;
  header: Partial<Header>;
  code: AckCode;
  issue?: V2Issue;
  /** Our application and facility names for MSH-3/4 when the message named no receiver. */
  receiver?: { app: string; facility: string };
}

/** Build an ACK for a received message (segments separated by CR, no trailing CR). */
export function buildAck(input: AckInput): string {
  const { separators: sep, header: h, code, issue } = input;
  const e = (s: string | undefined) => escapeText(s ?? '', sep);
  const enc = `${sep.component}${sep.repetition}${sep.escape}${sep.subcomponent}${sep.truncation ?? ''}`;
  const version = h.version || '2.5.1';
  const messageType = [`ACK`, e(h.triggerEvent)];
  if (versionAtLeast(version, 2, 3, 1)) messageType.push('ACK');
  const msh = [
    'MSH',
    enc,
    e(h.receivingApp || input.receiver?.app || 'CAREBRIDGE'),
    e(h.receivingFacility || input.receiver?.facility || ''),
    e(h.sendingApp),
    e(h.sendingFacility),
    hl7Timestamp(),
    '',
    messageType.join(sep.component).replace(trailing(sep.component), ''),
    newControlId(),
    e(h.processingId || 'P'),
    e(version),
  ].join(sep.field);
  const msa = ['MSA', code, e(h.controlId), issue ? e(truncate(issue.text, 80)) : ''].join(sep.field).replace(trailing(sep.field), '');
  const segments = [msh, msa];
  if (issue) segments.push(errSegment(issue, sep, version));
  return segments.join('\r');
}

function errSegment(issue: V2Issue, sep: Separators, version: string): string {
  const e = (s: string) => escapeText(s, sep);
  const codeText = ERROR_TEXT[issue.code] ?? 'Application error';
  const loc = issue.location;
  const erl = loc
    ? [e(loc.segment), loc.sequence ?? 1, loc.field, loc.repetition, loc.component, loc.subcomponent]
        .map((v) => (v === undefined ? '' : String(v)))
        .join(sep.component)
        .replace(trailing(sep.component), '')
    : '';
  const errorCode = [issue.code, e(codeText), 'HL70357'].join(sep.component);
  // ERR-1 (ELD) is what receivers before 2.5 read: segment^sequence^field^code&text&HL70357.
  const eld =
    !versionAtLeast(version, 2, 5) && loc
      ? [e(loc.segment), loc.sequence ?? 1, loc.field ?? '', [issue.code, e(codeText), 'HL70357'].join(sep.subcomponent)].join(sep.component)
      : !versionAtLeast(version, 2, 5)
        ? ['', '', '', [issue.code, e(codeText), 'HL70357'].join(sep.subcomponent)].join(sep.component)
        : '';
  return ['ERR', eld, erl, errorCode, 'E', '', '', '', e(issue.text)].join(sep.field);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const trailingRuns = new Map<string, RegExp>();

/** The regex for a run of separators at the end of a field (one per separator, not one per ACK). */
function trailing(sep: string): RegExp {
  let re = trailingRuns.get(sep);
  if (!re) trailingRuns.set(sep, (re = new RegExp(`${escapeRegExp(sep)}+$`)));
  return re;
}

/** The same acknowledgement again (a duplicate message): fresh MSH-7 and MSH-10, same content. */
export function refreshAck(ack: string): string {
  const fieldSep = ack[3] ?? '|';
  const [msh, ...rest] = ack.split('\r');
  const fields = msh!.split(fieldSep);
  if (fields.length > 9) {
    fields[6] = hl7Timestamp();
    fields[9] = newControlId();
  }
  return [fields.join(fieldSep), ...rest].join('\r');
}
