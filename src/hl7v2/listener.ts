/**
 * The MLLP listener (node:net). Per connection, frames are handled strictly in arrival order and
 * each reply is written in that order: a sender may pipeline messages without waiting for ACKs.
 * Frames that queued up while the previous ones were processed are handed over together
 * (MllpHandler.messages), so a busy feed is committed in batches of up to MAX_BATCH messages. When too many frames are waiting the socket is paused (TCP
 * backpressure) until the queue drains. An idle connection is closed after the idle timeout.
 * Closing stops accepting, lets queued messages finish (commit and ACK), then ends connections;
 * what is still running after the timeout is cut.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { frame, MllpDecoder, type MllpEvent } from './mllp.js';

export interface MllpHandler {
  /** A complete frame's payload in, the reply payload out. Must not throw. */
  message(payload: Buffer): Promise<Buffer>;
  /** Several frames of one connection, in order: one reply each, in the same order. Must not throw. */
  messages?(payloads: Buffer[]): Promise<Buffer[]>;
  /** The reply for a frame that could not be taken (oversize, cut short). */
  unreadable(head: Buffer, reason: string): Buffer;
}

export interface MllpListenerOptions {
  port: number;
  host: string;
  maxMessageBytes: number;
  idleTimeoutMs: number;
  /** Frames queued on one connection before it stops reading. */
  maxQueued?: number;
}

export interface MllpListener {
  readonly port: number;
  close(timeoutMs: number): Promise<void>;
}

interface Connection {
  socket: Socket;
  /** Events received and not answered yet, in arrival order. */
  pending: MllpEvent[];
  /** Settles when everything queued so far has been answered. */
  idle: Promise<void>;
  running: boolean;
}

/** Frames of one connection processed (and committed) together at most. */
const MAX_BATCH = 32;

export async function startMllpListener(options: MllpListenerOptions, handler: MllpHandler, logger: Logger): Promise<MllpListener> {
  const maxQueued = options.maxQueued ?? 64;
  const connections = new Set<Connection>();
  let closing = false;

  const server: Server = createServer((socket) => {
    const conn: Connection = { socket, pending: [], idle: Promise.resolve(), running: false };
    connections.add(conn);
    const decoder = new MllpDecoder(options.maxMessageBytes);
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.setTimeout(options.idleTimeoutMs);

    const replyOne = async (event: MllpEvent): Promise<Buffer> => {
      switch (event.kind) {
        case 'frame':
          return handler.message(event.payload);
        case 'oversize':
          return handler.unreadable(event.head, `Message of ${event.size} bytes exceeds the limit of ${options.maxMessageBytes} bytes`);
        case 'truncated':
          return handler.unreadable(event.payload, 'Message frame cut short (a new frame started before its end)');
      }
    };

    /** The next events to answer together: a run of frames (batched) or one other event. */
    const takeBatch = (): MllpEvent[] => {
      let n = 1;
      if (handler.messages && conn.pending[0]!.kind === 'frame') {
        while (n < conn.pending.length && n < MAX_BATCH && conn.pending[n]!.kind === 'frame') n++;
      }
      return conn.pending.splice(0, n);
    };

    const drain = async () => {
      while (conn.pending.length > 0) {
        const batch = takeBatch();
        try {
          const answers =
            batch.length > 1 ? await handler.messages!(batch.map((e) => (e as Extract<MllpEvent, { kind: 'frame' }>).payload)) : [await replyOne(batch[0]!)];
          // One write for the batch's replies: a syscall each cost more than the ACK itself.
          if (!socket.destroyed && socket.writable) socket.write(answers.length === 1 ? frame(answers[0]!) : Buffer.concat(answers.map(frame)));
        } catch (error) {
          logger.error({ err: error, peer }, 'MLLP: reply failed');
        }
        if (conn.pending.length < maxQueued / 2 && socket.isPaused() && !closing) socket.resume();
      }
    };

    const enqueue = (event: MllpEvent) => {
      conn.pending.push(event);
      if (conn.pending.length >= maxQueued) socket.pause();
      if (conn.running) return;
      conn.running = true;
      // Started on the next microtask: the other frames of the same chunk join the first batch.
      conn.idle = Promise.resolve().then(drain).finally(() => {
        conn.running = false;
      });
    };

    socket.on('data', (chunk: Buffer) => {
      if (closing) return; // shutting down: the sender will resend what was not acknowledged
      for (const event of decoder.push(chunk)) enqueue(event);
    });
    socket.on('timeout', () => {
      if (conn.running) return; // still working: not idle
      if (decoder.pending > 0) logger.warn({ peer, bytes: decoder.pending }, 'MLLP: idle connection closed with an incomplete frame');
      socket.end();
    });
    socket.on('error', (error) => logger.debug({ err: error, peer }, 'MLLP: connection error'));
    socket.on('close', () => {
      if (decoder.pending > 0) logger.warn({ peer, bytes: decoder.pending }, 'MLLP: connection closed with an incomplete frame');
      connections.delete(conn);
    });
  });
  server.maxConnections = 1000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error }, 'MLLP listener error'));
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    async close(timeoutMs: number) {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      const drained = Promise.all(
        [...connections].map(async (c) => {
          c.socket.pause();
          await c.idle;
          c.socket.end();
        }),
      );
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([drained, timedOut]);
      clearTimeout(timer);
      for (const c of connections) c.socket.destroy();
      await stopped;
    },
  };
}
