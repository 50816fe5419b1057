/**
 * The websocket channel endpoint: ws(s)://<host>/fhir/$websocket (default tenant) and
 * /t/<tenant>/fhir/$websocket, advertised in the CapabilityStatement (capabilitystatement-websocket).
 *
 * Client → server text frames:
 * - `bind <subscription id>` (R4): the server answers `bound <id>` and sends `ping <id>` per event.
 * - `bind-with-token <token>` (backport IG; token from Subscription/{id}/$get-ws-binding-token):
 *   topic-based subscriptions get a handshake Bundle and then every notification Bundle; R4
 *   criteria subscriptions get `bound <id>` and pings.
 * Errors are answered with `error <text>` and the socket stays open. Events while no socket is
 * bound are not kept for the socket: clients catch up with $events (event numbers have no gap).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Subscription } from 'fhir/r4.js';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { DEFAULT_TENANT, type Tenants } from '../store/tenants.js';
import { readState } from './numbering.js';
import { isTopicSubscription, topicNotification } from './topic-notification.js';
import { SUBSCRIPTION } from './validate.js';
import type { WsHub } from './ws-hub.js';
import { redeemWsToken } from './ws-token.js';

const PATH = /^(?:\/t\/([a-z][a-z0-9_-]{0,62}))?\/fhir\/\$websocket\/?$/;

export function attachWebSocket(server: Server, deps: { tenants: Tenants; hub: WsHub; logger: Logger; fhirBase: (tenant: string) => string }): { close(): void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const m = PATH.exec((req.url ?? '').split('?')[0]!);
    if (!m) return; // not ours: another upgrade handler may take it
    const tenant = m[1] ?? DEFAULT_TENANT;
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, tenant, deps));
  };
  server.on('upgrade', onUpgrade);
  return {
    close() {
      server.off('upgrade', onUpgrade);
      for (const client of wss.clients) client.terminate();
      wss.close();
    },
  };
}

function serve(ws: WebSocket, tenant: string, deps: { tenants: Tenants; hub: WsHub; logger: Logger; fhirBase: (tenant: string) => string }): void {
  ws.on('close', () => deps.hub.unbindSocket(ws));
  ws.on('error', () => undefined);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return ws.send('error binary frames are not supported');
    void handle(String(data).trim()).catch((error) => {
      deps.logger.warn({ err: error }, 'websocket: command failed');
      ws.send('error internal error');
    });
  });

  async function handle(text: string): Promise<void> {
    const [command, arg = ''] = text.split(/\s+/, 2);
    if (command !== 'bind' && command !== 'bind-with-token') return ws.send(`error unknown command '${command}' (bind <id> | bind-with-token <token>)`);
    const store = await deps.tenants.store(tenant);
    const id = command === 'bind' ? arg : await redeemWsToken(store, arg);
    if (!id) return ws.send('error the token is unknown, used or expired');
    const current = await store.current(store.db, SUBSCRIPTION, id);
    const sub = current?.content && !current.deleted ? (JSON.parse(current.content) as Subscription) : undefined;
    if (!sub) return ws.send(`error Subscription/${id} is not known`);
    if (sub.channel.type !== 'websocket') return ws.send(`error Subscription/${id} does not use the websocket channel`);
    const bundles = command === 'bind-with-token' && isTopicSubscription(sub);
    deps.hub.bind(ws, tenant, id, bundles ? 'bundle' : 'ping');
    if (!bundles) return ws.send(`bound ${id}`);
    const state = await readState(store.db, store.schema, id);
    ws.send(JSON.stringify(await topicNotification(store, sub, deps.fhirBase(tenant), { type: 'handshake', eventsSinceStart: state.eventsSinceStart, events: [] })));
  }
}
