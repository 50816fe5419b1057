/**
 * Entry point. Embedded store (no DATABASE_URL): one process. Server mode (DATABASE_URL): the
 * primary applies migrations once, then forks WORKERS HTTP workers sharing the port, so every
 * core serves requests.
 */
import cluster from 'node:cluster';
import { loadConfig } from './config.js';
import { openDatabase } from './store/engines.js';
import { DEFAULT_TENANT, Tenants } from './store/tenants.js';
import { createLogger, startServer } from './server.js';

const config = loadConfig();
const logger = createLogger(config);

async function runPrimary(): Promise<void> {
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 });
  await new Tenants(db).store(DEFAULT_TENANT);
  await db.close();
  logger.info({ workers: config.workers }, 'migrations applied; starting workers');
  let stopping = false;
  for (let i = 0; i < config.workers; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited; starting another');
    cluster.fork();
  });
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function runServer(): Promise<void> {
  const server = await startServer(config, logger);
  logger.info({ port: server.port, store: server.db.engine }, `CareBridge FHIR R4 server listening on port ${server.port} (/fhir)`);
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down: draining requests');
    server.close().then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

const main = cluster.isPrimary && config.workers > 1 ? runPrimary : runServer;
main().catch((error) => {
  logger.fatal({ err: error }, (error as Error).message);
  process.exit(1);
});
