/**
 * A small HL7 v2 (ER7, "pipe and hat") parser for versions 2.x: segments split on CR (LF and
 * CRLF tolerated), separators taken from MSH-1 and MSH-2, every field split into repetitions,
 * components and subcomponents, and escape sequences (\F\ \S\ \T\ \R\ \E\, \Xhh..\, \.br\)
 * decoded in the leaves. Segments are parsed eagerly: messages are small and every mapped field
 * is read at least once.
 *
 * Field numbering follows the standard: seg.fields[n] is field n (for MSH, fields[1] is the field
 * separator and fields[2] the encoding characters, both kept verbatim).
 */

export interface Separators {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
  /** 2.7+: MSH-2 may carry a fifth character, the truncation character (kept, not interpreted). */
  truncation?: string;
}

/** One repetition of a field: components, each a list of subcomponents (decoded text). */
export type Rep = string[][];
/** A field: its repetitions. */
export type Field = Rep[];

export interface Segment {
  name: string;
  /** fields[n] is field n; fields[0] is unused. */
  fields: Field[];
  /** 1-based occurrence of this segment name in the message (ERR-2 segment sequence). */
  occurrence: number;
}

export interface Message {
  separators: Separators;
  segments: Segment[];
}

/** A message that cannot be parsed at all: answered with AR. */
export class ParseError extends Error {
  constructor(
    message: string,
    /** Where, as an ERL: segment id, sequence, field (e.g. ['MSH', 1, 2]). */
    readonly location?: [string, number, number?],
    /** HL7 table 0357: 100 segment sequence error, 102 data type error. */
    readonly code: '100' | '102' = '102',
  ) {
    super(message);
  }
}

const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;

/** Read and check the separators from the start of a message ("MSH|^~\&|…"). */
export function readSeparators(text: string): Separators {
  if (!text.startsWith('MSH')) throw new ParseError('The message does not start with an MSH segment', ['MSH', 1], '100');
  const field = text[3];
  if (field === undefined || /[A-Za-z0-9\s]/.test(field)) throw new ParseError('MSH-1 (field separator) is missing or invalid', ['MSH', 1, 1]);
  const end = text.indexOf(field, 4);
  const enc = end < 0 ? '' : text.slice(4, end);
  const chars = [...enc];
  const distinct = new Set([field, ...chars]).size === chars.length + 1;
  if (chars.length < 4 || chars.length > 5 || !distinct || chars.some((c) => /[A-Za-z0-9\s]/.test(c))) {
    throw new ParseError(`MSH-2 (encoding characters) must be 4 or 5 distinct non-alphanumeric characters (got '${enc}')`, ['MSH', 1, 2]);
  }
  return { field, component: chars[0]!, repetition: chars[1]!, escape: chars[2]!, subcomponent: chars[3]!, truncation: chars[4] };
}

/** Parse a whole message. Throws ParseError when the message cannot be read. */
export function parseMessage(raw: string): Message {
  // Most messages start right at 'MSH': no BOM or leading white space to strip.
  const text = raw.charCodeAt(0) === 0x4d ? raw : raw.replace(/^\uFEFF/, '').replace(/^[\s]+/, '');
  const separators = readSeparators(text);
  const lines = text.includes('\n') ? text.split(/\r\n|\r|\n/) : text.split('\r');
  const scan = singleUnit(separators);
  const segments: Segment[] = [];
  const counts = new Map<string, number>();
  let mshCount = 0;
  for (const line of lines) {
    const first = line.charCodeAt(0);
    // A line starting with a capital letter is not blank; anything else may be.
    if (!(first >= 0x41 && first <= 0x5a) && line.trim() === '') continue;
    const name = line.slice(0, 3);
    if (!SEGMENT_NAME.test(name) || (line.length > 3 && line[3] !== separators.field)) {
      throw new ParseError(`Segment ${segments.length + 1} has an invalid segment id '${line.slice(0, 10)}'`, [name, segments.length + 1], '100');
    }
    const occurrence = (counts.get(name) ?? 0) + 1;
    counts.set(name, occurrence);
    if (name === 'MSH') mshCount++;
    segments.push(scan ? scanSegment(line, name, occurrence, separators) : parseSegment(line, name, occurrence, separators));
  }
  if (segments[0]?.name !== 'MSH') throw new ParseError('The first segment must be MSH', ['MSH', 1], '100');
  if (mshCount > 1) throw new ParseError('Batches and several MSH segments in one frame are not supported', ['MSH', 2], '100');
  return { separators, segments };
}

/** Whether every separator is one UTF-16 unit (always, but for astral characters): scanSegment's condition. */
function singleUnit(sep: Separators): boolean {
  return sep.field.length === 1 && sep.component.length === 1 && sep.repetition.length === 1 && sep.subcomponent.length === 1 && sep.escape.length === 1;
}

/** The general form: split on each separator in turn (any separator length). */
function parseSegment(line: string, name: string, occurrence: number, sep: Separators): Segment {
  const raw = line.split(sep.field);
  const fields: Field[] = [[]];
  if (name === 'MSH') {
    // MSH-1 is the separator itself and MSH-2 the encoding characters: neither is split.
    fields.push([[[sep.field]]], [[[raw[1] ?? '']]]);
    for (let i = 2; i < raw.length; i++) fields.push(splitField(raw[i]!, sep));
  } else {
    for (let i = 1; i < raw.length; i++) fields.push(splitField(raw[i]!, sep));
  }
  return { name, fields, occurrence };
}

function splitField(value: string, sep: Separators): Field {
  if (value === '') return [];
  return value.split(sep.repetition).map((rep) => rep.split(sep.component).map((comp) => comp.split(sep.subcomponent).map((s) => unescape(s, sep))));
}

/** One subcomponent's text, decoded only when it holds the escape character. */
function leafText(line: string, start: number, end: number, escaped: boolean, sep: Separators): string {
  const value = line.slice(start, end);
  return escaped ? unescape(value, sep) : value === '""' ? '' : value;
}

/**
 * parseSegment in one pass over the line: the same fields, repetitions, components and
 * subcomponents, without the intermediate arrays of split strings (the parser's main cost).
 */
function scanSegment(line: string, name: string, occurrence: number, sep: Separators): Segment {
  const fields: Field[] = [[]];
  let start = 4;
  if (name === 'MSH') {
    const end = line.indexOf(sep.field, 4);
    fields.push([[[sep.field]]], [[[end < 0 ? line.slice(4) : line.slice(4, end)]]]);
    if (end < 0) return { name, fields, occurrence };
    start = end + 1;
  } else if (line.length <= 3) {
    return { name, fields, occurrence };
  }
  const F = sep.field.charCodeAt(0);
  const R = sep.repetition.charCodeAt(0);
  const C = sep.component.charCodeAt(0);
  const S = sep.subcomponent.charCodeAt(0);
  const E = sep.escape.charCodeAt(0);
  let field: Field = [];
  let rep: Rep = [];
  let comp: string[] = [];
  let leafStart = start;
  let escaped = false;
  for (let i = start; i <= line.length; i++) {
    // The end of the line closes the last field as a field separator would.
    const c = i === line.length ? F : line.charCodeAt(i);
    if (c === F) {
      if (i === leafStart && field.length === 0 && rep.length === 0 && comp.length === 0) {
        fields.push([]); // an empty field has no repetitions
      } else {
        comp.push(leafText(line, leafStart, i, escaped, sep));
        rep.push(comp);
        field.push(rep);
        fields.push(field);
        field = [];
        rep = [];
        comp = [];
      }
    } else if (c === R) {
      comp.push(leafText(line, leafStart, i, escaped, sep));
      rep.push(comp);
      field.push(rep);
      rep = [];
      comp = [];
    } else if (c === C) {
      comp.push(leafText(line, leafStart, i, escaped, sep));
      rep.push(comp);
      comp = [];
    } else if (c === S) {
      comp.push(leafText(line, leafStart, i, escaped, sep));
    } else {
      if (c === E) escaped = true;
      continue;
    }
    leafStart = i + 1;
    escaped = false;
  }
  return { name, fields, occurrence };
}

/** Decode the escape sequences of one leaf value. A lone `""` (explicit null) reads as empty. */
export function unescape(value: string, sep: Separators): string {
  if (value === '""') return '';
  const e = sep.escape;
  if (!e || !value.includes(e)) return value;
  let out = '';
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (c !== e) {
      out += c;
      i++;
      continue;
    }
    const close = value.indexOf(e, i + 1);
    if (close < 0) {
      out += value.slice(i);
      break;
    }
    out += decodeEscape(value.slice(i + 1, close), sep) ?? value.slice(i, close + 1);
    i = close + 1;
  }
  return out;
}

function decodeEscape(code: string, sep: Separators): string | undefined {
  switch (code) {
    case 'F':
      return sep.field;
    case 'S':
      return sep.component;
    case 'T':
      return sep.subcomponent;
    case 'R':
      return sep.repetition;
    case 'E':
      return sep.escape;
    case 'P':
      return sep.truncation ?? '';
    case '.br':
      return '\n';
    case 'H':
    case 'N':
      return ''; // highlighting on/off: no meaning in plain text
  }
  if (/^X([0-9A-Fa-f]{2})+$/.test(code)) return Buffer.from(code.slice(1), 'hex').toString('utf8');
  if (/^[CM][0-9A-Fa-f]+$/.test(code)) return ''; // character set switches (ISO 2022): dropped
  if (/^\.(sp|in|ti|sk|ce|fi|nf)/.test(code)) return code.startsWith('.sp') ? '\n' : '';
  return undefined;
}

/** Escape text for writing into a field (ACK texts, outbound messages). */
export function escapeText(text: string, sep: Separators): string {
  // Most texts (names, ids, codes) hold nothing to escape.
  if (!needsEscape(text, sep)) return text;
  let out = '';
  for (const c of text) {
    if (c === sep.escape) out += `${sep.escape}E${sep.escape}`;
    else if (c === sep.field) out += `${sep.escape}F${sep.escape}`;
    else if (c === sep.component) out += `${sep.escape}S${sep.escape}`;
    else if (c === sep.subcomponent) out += `${sep.escape}T${sep.escape}`;
    else if (c === sep.repetition) out += `${sep.escape}R${sep.escape}`;
    else if (c === '\r' || c === '\n') out += `${sep.escape}.br${sep.escape}`;
    else out += c;
  }
  return out;
}

function needsEscape(text: string, sep: Separators): boolean {
  return (
    text.includes(sep.escape) ||
    text.includes(sep.field) ||
    text.includes(sep.component) ||
    text.includes(sep.subcomponent) ||
    text.includes(sep.repetition) ||
    text.includes('\r') ||
    text.includes('\n')
  );
}

// ---------------------------------------------------------------------------------------------
// Reading values

/** Component `c` (1-based) of a repetition, subcomponent `s` (1-based); '' when absent. */
export function comp(rep: Rep | undefined, c: number, s = 1): string {
  return rep?.[c - 1]?.[s - 1] ?? '';
}

/** The subcomponents of component `c` read as a repetition (for composite components like CX.4 HD). */
export function subRep(rep: Rep | undefined, c: number): Rep {
  return (rep?.[c - 1] ?? []).map((s) => [s]);
}

export function isValued(rep: Rep | undefined): boolean {
  return !!rep && rep.some((c) => c.some((s) => s !== ''));
}

/** The first segment with this name. */
export function segment(msg: Message, name: string): Segment | undefined {
  return msg.segments.find((s) => s.name === name);
}

/** Text of field n of a segment: first repetition, component c, subcomponent s. */
export function fieldText(seg: Segment | undefined, n: number, c = 1, s = 1): string {
  return comp(seg?.fields[n]?.[0], c, s);
}

export interface Header {
  sendingApp: string;
  sendingFacility: string;
  receivingApp: string;
  receivingFacility: string;
  controlId: string;
  messageCode: string;
  triggerEvent: string;
  structure: string;
  processingId: string;
  version: string;
  charset: string;
}

export function readHeader(msg: Message): Header {
  const msh = msg.segments[0]!;
  return {
    sendingApp: fieldText(msh, 3),
    sendingFacility: fieldText(msh, 4),
    receivingApp: fieldText(msh, 5),
    receivingFacility: fieldText(msh, 6),
    messageCode: fieldText(msh, 9, 1),
    triggerEvent: fieldText(msh, 9, 2),
    structure: fieldText(msh, 9, 3),
    controlId: fieldText(msh, 10),
    processingId: fieldText(msh, 11),
    version: fieldText(msh, 12),
    charset: fieldText(msh, 18),
  };
}

const DEFAULT_SEPARATORS: Separators = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

/**
 * Best effort for a message that failed to parse: the separators when readable (defaults
 * otherwise) and whatever MSH fields can be read, so that the AR still names the message.
 */
export function peekHeader(raw: string): { separators: Separators; header: Partial<Header> } {
  const text = raw.replace(/^\uFEFF/, '').replace(/^\s+/, '');
  let separators = DEFAULT_SEPARATORS;
  try {
    separators = readSeparators(text);
  } catch {
    // Unreadable encoding characters: read MSH with the default ones if it looks like one.
  }
  if (!text.startsWith('MSH')) return { separators, header: {} };
  const line = text.split(/\r\n|\r|\n/, 1)[0]!;
  const raw3 = line.split(text[3] ?? '|');
  const f = (n: number, c = 1) => (raw3[n - 1] ?? '').split(separators.component)[c - 1] ?? '';
  return {
    separators,
    header: {
      sendingApp: f(3),
      sendingFacility: f(4),
      receivingApp: f(5),
      receivingFacility: f(6),
      messageCode: f(9),
      triggerEvent: f(9, 2),
      controlId: f(10),
      processingId: f(11),
      version: f(12),
    },
  };
}
