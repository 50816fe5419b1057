/** Test helpers: an MLLP client over a real socket, fixtures, and small field edits. */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURES = join(fileURLToPath(new URL('.', import.meta.url)), '../../fixtures/hl7v2');

export const VT = '\x0b';
export const END = '\x1c\x0d';

/** A fixture message with CR segment separators and no trailing blank segments. */
export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8').replace(/\r\n|\n/g, '\r').replace(/\r+$/, '');
}

/** Replace field `n` of the first segment named `seg` (MSH numbering for MSH: MSH-10 is n=10). */
export function setField(message: string, seg: string, n: number, value: string): string {
  const segments = message.split('\r');
  const i = segments.findIndex((s) => s.startsWith(`${seg}|`));
  if (i < 0) throw new Error(`no ${seg} segment`);
  const fields = segments[i]!.split('|');
  const index = seg === 'MSH' ? n - 1 : n;
  while (fields.length <= index) fields.push('');
  fields[index] = value;
  segments[i] = fields.join('|');
  return segments.join('\r');
}

export function withControlId(message: string, id: string): string {
  return setField(message, 'MSH', 10, id);
}

export function dropSegments(message: string, seg: string): string {
  return message
    .split('\r')
    .filter((s) => !s.startsWith(`${seg}|`))
    .join('\r');
}

export interface Ack {
  raw: string;
  msh: string[];
  msa: string[];
  err?: string[];
}

export function parseAck(raw: string): Ack {
  const segments = raw.split('\r').map((s) => s.split('|'));
  const find = (name: string) => segments.find((s) => s[0] === name);
  return { raw, msh: find('MSH') ?? [], msa: find('MSA') ?? [], err: find('ERR') };
}

export class MllpClient {
  private buffer = '';
  private readonly waiting: Array<(payload: string) => void> = [];
  private readonly received: string[] = [];

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (;;) {
        const start = this.buffer.indexOf(VT);
        const end = this.buffer.indexOf(END, start + 1);
        if (start < 0 || end < 0) break;
        const payload = this.buffer.slice(start + 1, end);
        this.buffer = this.buffer.slice(end + END.length);
        const waiter = this.waiting.shift();
        if (waiter) waiter(payload);
        else this.received.push(payload);
      }
    });
  }

  static connect(port: number): Promise<MllpClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new MllpClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Write bytes as they are (for framing tests). */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  send(message: string): void {
    this.socket.write(`${VT}${message}${END}`);
  }

  /** The next reply (in order). */
  next(timeoutMs = 30_000): Promise<Ack> {
    const ready = this.received.shift();
    if (ready !== undefined) return Promise.resolve(parseAck(ready));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no MLLP reply in time')), timeoutMs);
      this.waiting.push((payload) => {
        clearTimeout(timer);
        resolve(parseAck(payload));
      });
    });
  }

  async request(message: string): Promise<Ack> {
    this.send(message);
    return this.next();
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.end(() => resolve());
      this.socket.once('close', () => resolve());
    });
  }
}

/** Send one message on a fresh connection and return the ACK. */
export async function sendOne(port: number, message: string): Promise<Ack> {
  const client = await MllpClient.connect(port);
  try {
    return await client.request(message);
  } finally {
    await client.close();
  }
}
