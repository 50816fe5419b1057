/** HL7 v2 inbound: the MLLP listener started beside the HTTP server (src/server.ts). */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Tenants } from '../store/tenants.js';
import { InboundHandler } from './inbound.js';
import { startMllpListener, type MllpListener } from './listener.js';
import { loadMappingConfig } from './mapping-config.js';
import { Mapper } from './mapper.js';

export type { MllpListener };

/** Start the MLLP listener unless MLLP_PORT is 'off'. The mappings are loaded and checked first. */
export async function startHl7v2(config: Config, tenants: Tenants, logger: Logger, httpPort: number): Promise<MllpListener | undefined> {
  if (config.mllpPort === undefined) return undefined;
  const mapper = new Mapper(loadMappingConfig());
  const log = logger.child({ component: 'hl7v2' });
  const baseUrl = `${config.baseUrl ?? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${httpPort}`}/fhir`;
  const inbound = new InboundHandler({ tenants, mapper, logger: log, baseUrl, ownPlacerSystem: config.hl7v2Outbound.placerSystem });
  const listener = await startMllpListener(
    { port: config.mllpPort, host: config.host, maxMessageBytes: config.mllpMaxMessageBytes, idleTimeoutMs: config.mllpIdleTimeoutMs },
    inbound,
    log,
  );
  log.info({ port: listener.port }, `HL7 v2 MLLP listener on port ${listener.port}`);
  return listener;
}
