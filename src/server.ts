/** Start and stop one CareBridge HTTP process: store, migrations, validators, listener, drain. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { warmUpValidators } from './fhir/validator.js';
import { createApp } from './http/app.js';
import { startHl7v2, type MllpListener } from './hl7v2/index.js';
import { stopReindexJobs } from './search/reindex-job.js';
import { openDatabase } from './store/engines.js';
import type { Database } from './store/db.js';
import { DEFAULT_TENANT, Tenants } from './store/tenants.js';
import { startSubscriptions, type SubscriptionService } from './subscriptions/index.js';

export interface RunningServer {
  port: number;
  url: string;
  /** The HL7 v2 MLLP listener's port (undefined when MLLP_PORT is 'off'). */
  mllpPort?: number;
  db: Database;
  close(): Promise<void>;
}

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({ level: config.logLevel, base: { pid: process.pid } });
}

export async function startServer(config: Config, logger: Logger = createLogger(config)): Promise<RunningServer> {
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.dbPoolSize });
  let server: Server | undefined;
  let mllp: MllpListener | undefined;
  let subscriptions: SubscriptionService | undefined;
  try {
    const tenants = new Tenants(db);
    await tenants.store(DEFAULT_TENANT);
    warmUpValidators();
    // Outbox relay and job workers (rest-hook Subscriptions): src/subscriptions/index.ts.
    subscriptions = await startSubscriptions({ db, tenants, config, logger });
    const subscriptionService = subscriptions;
    let accepting = true;
    const app = createApp({ config, tenants, logger, isReady: () => accepting });
    server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(config.port, config.host, () => resolve(s));
      s.once('error', reject);
    });
    server.keepAliveTimeout = 65_000;
    const port = (server.address() as AddressInfo).port;
    mllp = await startHl7v2(config, tenants, logger, port);
    const mllpListener = mllp;
    const running = server;
    let closing: Promise<void> | undefined;
    return {
      port,
      url: `http://127.0.0.1:${port}`,
      mllpPort: mllp?.port,
      db,
      close() {
        closing ??= (async () => {
          accepting = false;
          // Stop accepting, let in-flight requests finish, then cut what is left after the timeout.
          const drained = new Promise<void>((resolve) => running.close(() => resolve()));
          running.closeIdleConnections();
          const timer = setTimeout(() => running.closeAllConnections(), config.shutdownTimeoutMs);
          // MLLP: queued messages commit and are acknowledged before the connections end.
          await Promise.all([drained, mllpListener?.close(config.shutdownTimeoutMs)]);
          clearTimeout(timer);
          await stopReindexJobs(db); // background jobs stop after their current batch
          await subscriptionService.close(); // relay stops, workers finish their current job
          await db.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await mllp?.close(0);
    server?.close();
    await subscriptions?.close();
    await db.close();
    throw error;
  }
}
