/** HL7 v2 outbound feeds: the change consumer and the delivery worker on the shared job queue (src/server.ts). */
import type { Logger } from 'pino';
import type { JobQueue } from '../../jobs/queue.js';
import type { Tenants } from '../../store/tenants.js';
import type { ChangeConsumer } from '../../subscriptions/consumers.js';
import { loadMappingConfig } from '../mapping-config.js';
import { OutboundConsumer } from './consumer.js';
import { OutboundDelivery } from './delivery.js';
import { loadOutboundConfig } from './outbound-map.js';
import type { OutboundSettings } from './settings.js';

export interface Hl7v2Outbound {
  consumer: ChangeConsumer;
  delivery: OutboundDelivery;
}

/** Load and check the outbound maps (a broken map stops the server) and build the consumer and worker. */
export function createHl7v2Outbound(tenants: Tenants, queue: JobQueue, settings: OutboundSettings, logger: Logger): Hl7v2Outbound {
  const config = loadOutboundConfig(loadMappingConfig());
  const log = logger.child({ component: 'hl7v2-outbound' });
  return { consumer: new OutboundConsumer(tenants, queue, config, settings).changeConsumer(), delivery: new OutboundDelivery(tenants, queue, settings, log) };
}
