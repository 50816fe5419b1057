/**
 * Where websocket notifications go: the sockets bound to a subscription may be held by any server
 * process, so a delivery is published on Redis (REDIS_URL set; channel `<prefix>:subscription-ws`)
 * and every process, the publisher included, forwards it to its own bound sockets. Without Redis
 * (single process) it goes to the local sockets directly.
 *
 * A socket bound with `bind <id>` (R4) gets `ping <id>`; one bound with `bind-with-token` to a
 * topic-based subscription gets the notification Bundle (JSON text).
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';

export type BindMode = 'ping' | 'bundle';

export interface WsMessage {
  tenant: string;
  subscriptionId: string;
  /** R4 `ping <id>`. */
  ping: string;
  /** Notification Bundle (topic-based subscriptions), for sockets bound with a token. */
  bundle?: string;
}

export class WsHub {
  private readonly bindings = new Map<string, Map<WebSocket, BindMode>>();
  private pub?: Redis;
  private sub?: Redis;
  private readonly channel: string;

  constructor(
    private readonly logger: Logger,
    redisUrl?: string,
    prefix = 'carebridge',
  ) {
    this.channel = `${prefix}:subscription-ws`;
    if (redisUrl) {
      this.pub = new Redis(redisUrl, { maxRetriesPerRequest: null });
      this.sub = new Redis(redisUrl, { maxRetriesPerRequest: null });
      this.pub.on('error', () => undefined);
      this.sub.on('error', () => undefined);
      void this.sub.subscribe(this.channel).catch((error) => this.logger.warn({ err: error }, 'websocket hub: Redis subscribe failed'));
      this.sub.on('message', (_channel, text: string) => {
        try {
          this.deliverLocal(JSON.parse(text) as WsMessage);
        } catch (error) {
          this.logger.warn({ err: error }, 'websocket hub: bad message');
        }
      });
    }
  }

  /** Wait until the Redis subscription is in place (tests, start-up). */
  async ready(): Promise<void> {
    if (this.sub && this.sub.status !== 'ready') await new Promise<void>((resolve) => this.sub!.once('ready', () => resolve()));
  }

  bind(socket: WebSocket, tenant: string, subscriptionId: string, mode: BindMode): void {
    const key = `${tenant}/${subscriptionId}`;
    const sockets = this.bindings.get(key) ?? new Map<WebSocket, BindMode>();
    // A socket bound twice keeps the richer mode.
    if (sockets.get(socket) !== 'bundle') sockets.set(socket, mode);
    this.bindings.set(key, sockets);
  }

  unbindSocket(socket: WebSocket): void {
    for (const [key, sockets] of this.bindings) {
      sockets.delete(socket);
      if (sockets.size === 0) this.bindings.delete(key);
    }
  }

  /** Send to every socket bound to the subscription, in whichever process holds it. */
  async publish(message: WsMessage): Promise<void> {
    if (this.pub) await this.pub.publish(this.channel, JSON.stringify(message));
    else this.deliverLocal(message);
  }

  private deliverLocal(m: WsMessage): void {
    for (const [socket, mode] of this.bindings.get(`${m.tenant}/${m.subscriptionId}`) ?? []) {
      if (socket.readyState !== socket.OPEN) continue;
      socket.send(mode === 'bundle' && m.bundle ? m.bundle : m.ping);
    }
  }

  async close(): Promise<void> {
    for (const sockets of this.bindings.values()) for (const socket of sockets.keys()) socket.terminate();
    this.bindings.clear();
    await Promise.all([this.pub, this.sub].map((r) => r?.quit().catch(() => r.disconnect())));
  }
}
