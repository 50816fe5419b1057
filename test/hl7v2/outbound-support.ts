/** Test helpers for HL7 v2 outbound: an MLLP receiver on loopback, destinations written over FHIR. */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { call } from '../support/server.js';

/** A receiving system: records every message and answers with `ackCode` (AA unless changed). */
export class MllpReceiver {
  readonly messages: string[] = [];
  ackCode = 'AA';
  /** Messages answered AE whatever ackCode says. */
  refuse?: (message: string) => boolean;
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  constructor(public port = 0) {}

  async start(): Promise<this> {
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      let buffer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\x1c\r'); end >= 0; end = buffer.indexOf('\x1c\r')) {
          const message = buffer.slice(buffer.indexOf('\x0b') + 1, end);
          buffer = buffer.slice(end + 2);
          this.messages.push(message);
          const controlId = field(message, 'MSH', 10);
          socket.write(`\x0bMSH|^~\\&|RECV|RECVFAC|||20240101000000||ACK|A${controlId}|P|2.5.1\rMSA|${this.refuse?.(message) ? 'AE' : this.ackCode}|${controlId}|test ack\x1c\r`);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r));
    this.server = undefined;
  }

  /** Messages whose field matches (e.g. ORC-2.1 = the order number). */
  matching(seg: string, n: number, value: string, component = 1): string[] {
    return this.messages.filter((m) => field(m, seg, n, component) === value);
  }
}

/** Field n (component c) of the first segment `seg`; MSH numbering for MSH. */
export function field(message: string, seg: string, n: number, c?: number): string {
  const line = message.split('\r').find((s) => s.startsWith(`${seg}|`));
  if (!line) return '';
  const fields = line.split('|');
  const value = fields[seg === 'MSH' ? n - 1 : n] ?? '';
  return c === undefined ? value : (value.split('~')[0]!.split('^')[c - 1] ?? '');
}

/** An Organization with an active MLLP Endpoint taking these v2 message types; returns their ids. */
export async function destination(base: string, port: number, types: string[], opts: { facility?: string; name?: string } = {}) {
  const endpoint = await call(base, 'POST', '/Endpoint', {
    resourceType: 'Endpoint',
    status: 'active',
    connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7v2-mllp' },
    payloadType: types.map((code) => ({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0076', code }] })),
    address: `mllp://127.0.0.1:${port}`,
    ...(opts.facility ? { header: [`MSH-5: APP-${opts.facility}`, `MSH-6: ${opts.facility}`] } : {}),
  });
  expect(endpoint.status).toBe(201);
  const org = await call(base, 'POST', '/Organization', { resourceType: 'Organization', name: opts.name ?? 'Receiving lab', endpoint: [{ reference: `Endpoint/${endpoint.body.id}` }] });
  expect(org.status).toBe(201);
  return { endpoint: endpoint.body as { id: string } & Record<string, unknown>, organizationId: org.body.id as string };
}

/** Turn an endpoint off (so that later tests' patients do not reach it). */
export async function switchOff(base: string, endpoint: { id: string } & Record<string, unknown>): Promise<void> {
  const r = await call(base, 'PUT', `/Endpoint/${endpoint.id}`, { ...endpoint, status: 'off', meta: undefined });
  expect(r.status).toBe(200);
}

/** A port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export async function patient(base: string, mrn: string): Promise<string> {
  const r = await call(base, 'POST', '/Patient', {
    resourceType: 'Patient',
    identifier: [{ system: 'urn:oid:2.16.840.1.113883.19.5', value: mrn, type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] } }],
    name: [{ family: 'Doe', given: ['Jane', 'Q'] }],
    gender: 'female',
    birthDate: '1980-02-03',
  });
  expect(r.status).toBe(201);
  return r.body.id;
}

/** Environment of the outbound suites: fast retries, few attempts. */
export const OUTBOUND_ENV = {
  HL7V2_OUTBOUND_ATTEMPTS: '10',
  HL7V2_OUTBOUND_BACKOFF_MS: '50',
  HL7V2_OUTBOUND_MAX_BACKOFF_MS: '400',
  HL7V2_OUTBOUND_ACK_TIMEOUT_MS: '2000',
};
