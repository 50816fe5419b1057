/**
 * Lab round trips for scripts/bench/workflows.ts: a loopback MLLP lab and the clients that order
 * from it.
 *
 * The lab ACKs each OML^O21 at once, then answers it with a final ORU^R01 on the order's ORC-2
 * (OBR-2 the same), PID copied from the order, sent to CareBridge's MLLP listener on a connection
 * of its own (src/hl7v2/mllp-client.ts, as CareBridge's own outbound side does).
 *
 * An order's round trip: POST ServiceRequest (no identifier: ORC-2 is `<id>^CAREBRIDGE`) → change
 * consumers → fulfilment Task + OML^O21 delivered to the lab → ORU^R01 → DiagnosticReport stored →
 * Task completed. Completion is seen by one poller for all clients (the newest completed Tasks,
 * every POLL_MS); the latency is the Task's `meta.lastUpdated` minus the moment the POST was sent
 * (same machine clock), so the poll interval does not count in it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { frame, MllpDecoder } from '../../src/hl7v2/mllp.js';
import { sendMllp } from '../../src/hl7v2/mllp-client.js';
import { runFor } from './lib.js';

const POLL_MS = 25;
const ROUND_TRIP_TIMEOUT_MS = 30_000;

const segment = (message: string, name: string) => message.split('\r').find((s) => s.startsWith(`${name}|`)) ?? '';

/** The ORU^R01 a lab sends for an OML^O21: one final cholesterol result on the order's placer number. */
function resultFor(oml: string, controlId: string): string {
  const placer = segment(oml, 'ORC').split('|')[2] ?? '';
  const obr = ['OBR', '1', placer, `F${controlId}^BENCHLAB`, '2093-3^Cholesterol^LN'];
  while (obr.length < 26) obr.push('');
  obr[25] = 'F';
  return [
    `MSH|^~\\&|LIS|BENCHLAB|CAREBRIDGE|CAREBRIDGE|20260105120000+0000||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    segment(oml, 'PID'),
    `ORC|RE|${placer}`,
    obr.join('|'),
    'OBX|1|NM|2093-3^Cholesterol^LN||185|mg/dL^^UCUM|<200|N|||F',
  ].join('\r');
}

export class LoopbackLab {
  orders = 0;
  results = 0;
  readonly failures: string[] = [];
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly carebridgeMllpPort: number) {}

  /** Listen on a free port of 127.0.0.1; returns it. */
  async start(): Promise<number> {
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      const decoder = new MllpDecoder(1024 * 1024);
      socket.on('data', (chunk: Buffer) => {
        for (const event of decoder.push(chunk)) if (event.kind === 'frame') this.receive(socket, event.payload.toString('utf8'));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r));
  }

  private receive(socket: Socket, message: string): void {
    const controlId = segment(message, 'MSH').split('|')[9] ?? '';
    socket.write(frame(Buffer.from(`MSH|^~\\&|LIS|BENCHLAB|CAREBRIDGE|CAREBRIDGE|20260105120000+0000||ACK^O21^ACK|A${controlId}|P|2.5.1\rMSA|AA|${controlId}`, 'utf8')));
    if (!segment(message, 'MSH').split('|')[8]?.startsWith('OML^O21')) return;
    const n = ++this.orders;
    sendMllp(resultFor(message, `R${n}`), { host: '127.0.0.1', port: this.carebridgeMllpPort, timeoutMs: ROUND_TRIP_TIMEOUT_MS })
      .then((ack) => {
        if (segment(ack, 'MSA').split('|')[1] === 'AA') this.results++;
        else this.failures.push(ack.replace(/\r/g, '\n'));
      })
      .catch((error: Error) => this.failures.push(error.message));
  }
}

type Waiter = { sentAt: number; resolve: (serverMs: number) => void };

/** Watches completed fulfilment Tasks for the orders being waited for. */
class Completions {
  private readonly waiting = new Map<string, Waiter>();
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(private readonly base: string) {
    this.loop = this.poll();
  }

  /** Resolves with the round trip in ms (Task.meta.lastUpdated − sentAt). */
  wait(orderId: string, sentAt: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(orderId);
        reject(new Error(`ServiceRequest/${orderId}: no completed Task within ${ROUND_TRIP_TIMEOUT_MS} ms`));
      }, ROUND_TRIP_TIMEOUT_MS);
      this.waiting.set(orderId, {
        sentAt,
        resolve: (ms) => {
          clearTimeout(timer);
          resolve(ms);
        },
      });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async poll(): Promise<void> {
    while (!this.stopped) {
      if (this.waiting.size > 0) {
        const res = await fetch(`${this.base}/Task?status=completed&_sort=-_lastUpdated&_count=100&_elements=focus`, { headers: { accept: 'application/fhir+json' } });
        if (res.status !== 200) throw new Error(`Task search → ${res.status}: ${await res.text()}`);
        const bundle = (await res.json()) as { entry?: Array<{ resource: { focus?: { reference?: string }; meta?: { lastUpdated?: string } } }> };
        for (const { resource } of bundle.entry ?? []) {
          const id = resource.focus?.reference?.replace(/^ServiceRequest\//, '') ?? '';
          const w = this.waiting.get(id);
          if (!w) continue;
          this.waiting.delete(id);
          w.resolve(Date.parse(resource.meta!.lastUpdated!) - w.sentAt);
        }
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

export interface RoundTrips {
  /** Server-side round trips in ms (POST sent → Task completed). */
  latencies: number[];
  seconds: number;
}

/**
 * C clients for D seconds, each: order over REST, wait until its Task is completed, next order.
 * `order()` returns the ServiceRequest body (same patient and lab each time).
 */
export async function labRoundTrips(base: string, order: () => Record<string, unknown>, concurrency: number, seconds: number): Promise<RoundTrips> {
  const completions = new Completions(base);
  const latencies: number[] = [];
  const roundTrip = async () => {
    const sentAt = Date.now();
    const res = await fetch(`${base}/ServiceRequest`, { method: 'POST', headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' }, body: JSON.stringify(order()) });
    const body = (await res.json()) as { id: string };
    if (res.status !== 201) throw new Error(`POST ServiceRequest → ${res.status}: ${JSON.stringify(body)}`);
    latencies.push(await completions.wait(body.id, sentAt));
  };
  try {
    await roundTrip(); // warm-up: the outbound consumer notices the lab's endpoint, first connections
    latencies.length = 0;
    const run = await runFor(seconds * 1000, concurrency, roundTrip);
    return { latencies, seconds: run.seconds };
  } finally {
    await completions.stop();
  }
}
