/**
 * Sending one HL7 v2 message over MLLP and waiting for its acknowledgement (outbound feeds).
 * A connection per message: feeds are low volume, and a fresh connection never inherits a
 * half-read ACK of an earlier timed-out exchange. Framing and deframing reuse mllp.ts.
 */
import { connect } from 'node:net';
import { MllpDecoder, frame } from './mllp.js';

export interface MllpSendOptions {
  host: string;
  port: number;
  /** Connect + send + ACK must finish within this time. */
  timeoutMs: number;
  maxAckBytes?: number;
}

/** Send a message (segments separated by CR); resolves with the ACK payload, rejects on refusal, close or timeout. */
export function sendMllp(message: string, options: MllpSendOptions): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const socket = connect({ host: options.host, port: options.port });
    const decoder = new MllpDecoder(options.maxAckBytes ?? 1024 * 1024);
    let settled = false;
    const finish = (error: Error | undefined, ack?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(ack!);
    };
    const timer = setTimeout(() => finish(new Error(`no ACK from ${options.host}:${options.port} within ${options.timeoutMs} ms`)), options.timeoutMs);
    socket.once('connect', () => socket.write(frame(Buffer.from(message, 'utf8'))));
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.kind === 'frame') return finish(undefined, event.payload.toString('utf8'));
        return finish(new Error(`unreadable ACK frame from ${options.host}:${options.port} (${event.kind})`));
      }
    });
    socket.once('error', (error) => finish(new Error(`MLLP ${options.host}:${options.port}: ${error.message}`)));
    socket.once('close', () => finish(new Error(`connection to ${options.host}:${options.port} closed before the ACK`)));
  });
}
