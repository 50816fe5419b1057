/** Start and stop one CareBridge HTTP process: store, migrations, validators, listener, drain. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { warmUpValidators } from './fhir/validator.js';
import { setServerWriteProvenance } from './audit/write-audit.js';
import { createApp } from './http/app.js';
import { createJobsAdminRouter } from './http/admin-jobs.js';
import { startHl7v2, type MllpListener } from './hl7v2/index.js';
import { stopReindexJobs } from './search/reindex-job.js';
import { openDatabase } from './store/engines.js';
import type { Database } from './store/db.js';
import { DEFAULT_TENANT, Tenants } from './store/tenants.js';
import { keepStatistics, type StatisticsKeeper } from './store/statistics.js';
import { startSubscriptions, type SubscriptionService } from './subscriptions/index.js';
import { registerWorkflows, workflowConsumers } from './workflows/index.js';
import { createHl7v2Admin } from './hl7v2/admin.js';
import { createHl7v2Outbound, type Hl7v2Outbound } from './hl7v2/outbound/index.js';
import { createHl7v2AdminRouter } from './http/admin-hl7v2.js';
import { authHook, bootstrapAdministrator } from './auth/index.js';

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
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.dbPoolSize, preparedStatements: config.dbPreparedStatements });
  let server: Server | undefined;
  let mllp: MllpListener | undefined;
  let subscriptions: SubscriptionService | undefined;
  let statistics: StatisticsKeeper | undefined;
  try {
    const tenants = new Tenants(db);
    const defaultStore = await tenants.store(DEFAULT_TENANT);
    // SMART authorization: the administrator client on first start, or the AUTH_MODE=open warning.
    await bootstrapAdministrator(defaultStore, config, logger, (text) => process.stderr.write(text));
    warmUpValidators();
    statistics = keepStatistics(db, logger); // ANALYZE where autovacuum does not (src/store/statistics.ts)
    setServerWriteProvenance(config.audit); // HL7 v2 inbound, jobs and workflows: a Provenance per transaction
    // Outbox relay and job workers (rest-hook Subscriptions): src/subscriptions/index.ts.
    registerWorkflows(config); // write rules (src/workflows/index.ts)
    let hl7v2Outbound: Hl7v2Outbound | undefined; // HL7 v2 outbound feeds: src/hl7v2/outbound/
    subscriptions = await startSubscriptions({
      db, tenants, config, logger,
      consumers: (queue) => {
        hl7v2Outbound = createHl7v2Outbound(tenants, queue, config.hl7v2Outbound, logger);
        return [...workflowConsumers({ tenants, queue, config, logger }), hl7v2Outbound.consumer];
      },
    });
    hl7v2Outbound?.delivery.start();
    // Messages left waiting by a previous process (lost with the in-process queue) go out again.
    void hl7v2Outbound?.delivery.resume(DEFAULT_TENANT).catch((error) => logger.warn({ err: error }, 'HL7 v2 outbound: resume failed'));
    let httpPort = 0;
    const hl7v2Admin = createHl7v2AdminRouter(
      createHl7v2Admin({ tenants, delivery: hl7v2Outbound?.delivery, logger, baseUrl: () => `${config.baseUrl ?? `http://127.0.0.1:${httpPort}`}/fhir`, ownPlacerSystem: config.hl7v2Outbound.placerSystem }),
    );
    const subscriptionService = subscriptions;
    let accepting = true;
    const jobsAdmin = createJobsAdminRouter(subscriptions.queue);
    const app = createApp({ config, tenants, logger, isReady: () => accepting, hl7v2Admin, jobsAdmin, tenantHooks: [authHook(config, tenants)] });
    server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(config.port, config.host, () => resolve(s));
      s.once('error', reject);
    });
    server.keepAliveTimeout = 65_000;
    subscriptions.attachWebSocket(server); // websocket channel at /fhir/$websocket (src/subscriptions/websocket.ts)
    const port = (server.address() as AddressInfo).port;
    httpPort = port;
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
          subscriptionService.closeWebSocket();
          const drained = new Promise<void>((resolve) => running.close(() => resolve()));
          running.closeIdleConnections();
          const timer = setTimeout(() => running.closeAllConnections(), config.shutdownTimeoutMs);
          // MLLP: queued messages commit and are acknowledged before the connections end.
          await Promise.all([drained, mllpListener?.close(config.shutdownTimeoutMs)]);
          clearTimeout(timer);
          await stopReindexJobs(db); // background jobs stop after their current batch
          await subscriptionService.close(); // relay stops, workers finish their current job
          await statistics?.close();
          await db.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await mllp?.close(0);
    server?.close();
    await subscriptions?.close();
    await statistics?.close();
    await db.close();
    throw error;
  }
}
