/**
 * MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2): each message travels as
 * <VT 0x0B> payload <FS 0x1C><CR 0x0D>. TCP delivers bytes in arbitrary chunks, so the decoder
 * keeps state across chunks: a frame may arrive in pieces, several frames in one chunk.
 *
 * What the decoder reports, in stream order:
 * - frame: a complete payload;
 * - oversize: a frame longer than the limit (its bytes are dropped up to its end; the first
 *   bytes are kept so that the NAK can name the message);
 * - truncated: a frame cut short by the start of the next one (a VT inside a frame cannot be
 *   content), reported with what had arrived.
 * Bytes between frames are ignored.
 */

export const VT = 0x0b;
export const FS = 0x1c;
export const CR = 0x0d;

export type MllpEvent =
  | { kind: 'frame'; payload: Buffer }
  | { kind: 'oversize'; head: Buffer; size: number }
  | { kind: 'truncated'; payload: Buffer };

/** How many leading bytes of an oversize frame are kept (enough for the MSH segment). */
const HEAD_BYTES = 4096;

export class MllpDecoder {
  private inFrame = false;
  /** After FS: a CR that follows is part of the trailer. */
  private afterFs = false;
  private chunks: Buffer[] = [];
  private size = 0;
  private oversize = false;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes of a frame received so far (a partial frame at close or idle timeout). */
  get pending(): number {
    return this.inFrame ? this.size : 0;
  }

  push(data: Buffer): MllpEvent[] {
    const events: MllpEvent[] = [];
    let i = 0;
    while (i < data.length) {
      if (this.afterFs) {
        this.afterFs = false;
        if (data[i] === CR) i++;
        continue;
      }
      if (!this.inFrame) {
        const start = data.indexOf(VT, i);
        if (start < 0) break; // noise between frames
        this.startFrame();
        i = start + 1;
        continue;
      }
      // Inside a frame: find whichever comes first, its end (FS) or a new start (VT).
      const end = indexOfEither(data, FS, VT, i);
      const stop = end < 0 ? data.length : end;
      this.append(data.subarray(i, stop));
      if (end < 0) break;
      if (data[end] === FS) {
        events.push(this.finishFrame());
        this.afterFs = true;
      } else {
        events.push({ kind: 'truncated', payload: this.take() });
        this.startFrame();
      }
      i = end + 1;
    }
    return events;
  }

  private startFrame(): void {
    this.inFrame = true;
    this.chunks = [];
    this.size = 0;
    this.oversize = false;
  }

  private append(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.size += bytes.length;
    if (this.oversize) return;
    if (this.size > this.maxMessageBytes) {
      // Keep only the head; the rest of this frame is counted and dropped.
      this.oversize = true;
      const kept = Buffer.concat([...this.chunks, bytes]).subarray(0, HEAD_BYTES);
      this.chunks = [Buffer.from(kept)];
      return;
    }
    this.chunks.push(bytes);
  }

  private take(): Buffer {
    const payload = Buffer.concat(this.chunks);
    this.inFrame = false;
    this.chunks = [];
    this.size = 0;
    return payload;
  }

  private finishFrame(): MllpEvent {
    const size = this.size;
    const oversize = this.oversize;
    const payload = this.take();
    return oversize ? { kind: 'oversize', head: payload, size } : { kind: 'frame', payload };
  }
}

function indexOfEither(data: Buffer, a: number, b: number, from: number): number {
  for (let i = from; i < data.length; i++) {
    const c = data[i];
    if (c === a || c === b) return i;
  }
  return -1;
}

/** Wrap a payload in an MLLP frame. */
export function frame(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([VT]), payload, Buffer.from([FS, CR])]);
}
