/** Test helpers of the subscription suites: a webhook receiver on loopback and polling. */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import WebSocket from 'ws';

export interface Delivery {
  hook: string;
  status: number;
  method: string;
  /** What follows /hook/<name>/ in the request path. */
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  event: string;
  /** X-CareBridge-Event-Number: the subscription's event number. */
  number: number;
  at: number;
}

/** A webhook receiver: records every request; hooks in `failing` answer 500. */
export class Receiver {
  readonly deliveries: Delivery[] = [];
  readonly failing = new Set<string>();
  private server?: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        // /hook/<name> (empty payload, POST) or /hook/<name>/<type>/<id> (full resource, PUT).
        const [hook = '', ...rest] = (req.url ?? '').replace(/^\/hook\//, '').split('/');
        const status = this.failing.has(hook) ? 500 : 200;
        this.deliveries.push({
          hook,
          status,
          method: req.method ?? '',
          path: rest.join('/'),
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          event: String(req.headers['x-carebridge-event']),
          number: Number(req.headers['x-carebridge-event-number']),
          at: Date.now(),
        });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  url(hook: string): string {
    return `http://127.0.0.1:${this.port}/hook/${hook}`;
  }

  ok(hook: string): Delivery[] {
    return this.deliveries.filter((d) => d.hook === hook && d.status === 200);
  }

  all(hook: string): Delivery[] {
    return this.deliveries.filter((d) => d.hook === hook);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Delete every Redis key under the prefix (queues of one test run): the shared helper. */
export { removeKeys } from '../support/redis.js';

// Topic-based subscriptions (backport IG): a topic Basic, a subscription to it, a notification's status.

const X = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.';
const BP = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';

export function topicBasic(url: string, triggers: object[], canFilterBy: Array<[string, string]> = []) {
  return {
    resourceType: 'Basic',
    code: { coding: [{ system: 'http://hl7.org/fhir/fhir-types', code: 'SubscriptionTopic' }] },
    extension: [
      { url: `${X}url`, valueUri: url },
      ...triggers.map((t) => ({ url: `${X}resourceTrigger`, extension: t })),
      ...canFilterBy.map(([resource, param]) => ({ url: `${X}canFilterBy`, extension: [{ url: 'resource', valueUri: resource }, { url: 'filterParameter', valueString: param }] })),
    ],
  };
}

export function topicSubscription(topic: string, endpoint: string, content: string, options: { filters?: string[]; heartbeat?: number } = {}) {
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'topic test',
    criteria: topic,
    ...(options.filters ? { _criteria: { extension: options.filters.map((f) => ({ url: `${BP}backport-filter-criteria`, valueString: f })) } } : {}),
    channel: {
      type: 'rest-hook',
      endpoint,
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${BP}backport-payload-content`, valueCode: content }] },
      ...(options.heartbeat ? { extension: [{ url: `${BP}backport-heartbeat-period`, valueUnsignedInt: options.heartbeat }] } : {}),
    },
  };
}

/** The SubscriptionStatus of a notification Bundle, as name → value. */
export function statusOf(bundle: any): { type: string; since: string; events: Array<{ number: string; focus?: string }>; topic?: string } {
  expect(bundle.resourceType).toBe('Bundle');
  expect(bundle.type).toBe('history');
  const params = bundle.entry[0].resource;
  expect(params.resourceType).toBe('Parameters');
  const one = (name: string) => params.parameter.find((p: any) => p.name === name);
  return {
    type: one('type').valueCode,
    since: one('events-since-subscription-start').valueString,
    topic: one('topic')?.valueCanonical,
    events: params.parameter
      .filter((p: any) => p.name === 'notification-event')
      .map((p: any) => ({ number: p.part.find((q: any) => q.name === 'event-number').valueString, focus: p.part.find((q: any) => q.name === 'focus')?.valueReference.reference })),
  };
}


/** A trigger firing when an Encounter becomes finished (create or update), by fhirPathCriteria. */
export const ENCOUNTER_FINISHED_TRIGGER = [
  { url: 'resource', valueUri: 'http://hl7.org/fhir/StructureDefinition/Encounter' },
  { url: 'supportedInteraction', valueCode: 'create' },
  { url: 'supportedInteraction', valueCode: 'update' },
  { url: 'fhirPathCriteria', valueString: "(%previous.id.empty() or %previous.status != 'finished') and %current.status = 'finished'" },
];

/** A ws client that records every text frame it receives. */
export async function wsClient(url: string): Promise<{ ws: WebSocket; frames: string[]; next(match?: (f: string) => boolean, timeoutMs?: number): Promise<string> }> {
  const ws = new WebSocket(url);
  const frames: string[] = [];
  ws.on('message', (d) => frames.push(String(d)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let seen = 0;
  return {
    ws,
    frames,
    /** The next frame not yet returned (that matches). */
    async next(match = () => true, timeoutMs = 15_000) {
      let found: string | undefined;
      await until(() => {
        while (seen < frames.length) {
          const f = frames[seen++]!;
          if (match(f)) {
            found = f;
            return true;
          }
        }
        return false;
      }, timeoutMs, 'a websocket frame');
      return found!;
    },
  };
}

