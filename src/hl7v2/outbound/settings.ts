/** HL7 v2 outbound settings from the environment (documented in README.md). */
import type { Backoff } from '../../jobs/queue.js';

export interface OutboundSettings {
  /** Delivery attempts of one message before it is dead (HL7V2_OUTBOUND_ATTEMPTS). */
  attempts: number;
  backoff: Backoff;
  /** Connect, send and ACK within this time (HL7V2_OUTBOUND_ACK_TIMEOUT_MS). */
  ackTimeoutMs: number;
  /** MSH-3 / MSH-4 of the messages we send. */
  sendingApp: string;
  sendingFacility: string;
  /** Identifier.system of ORC-2 for requests without an identifier (value: the resource id). */
  placerSystem: string;
}

/** HL7V2_PLACER_SYSTEM unset: assigning authority CAREBRIDGE (encoders.ts authority()). */
export const DEFAULT_PLACER_SYSTEM = 'urn:carebridge:hl7v2:authority:CAREBRIDGE';

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer (got '${raw}')`);
  return n;
}

export function loadOutboundSettings(env: NodeJS.ProcessEnv): OutboundSettings {
  return {
    attempts: positive(env, 'HL7V2_OUTBOUND_ATTEMPTS', 20),
    backoff: { delayMs: positive(env, 'HL7V2_OUTBOUND_BACKOFF_MS', 1000), maxDelayMs: positive(env, 'HL7V2_OUTBOUND_MAX_BACKOFF_MS', 300_000) },
    ackTimeoutMs: positive(env, 'HL7V2_OUTBOUND_ACK_TIMEOUT_MS', 30_000),
    sendingApp: env.HL7V2_SENDING_APP || 'CAREBRIDGE',
    sendingFacility: env.HL7V2_SENDING_FACILITY || 'CAREBRIDGE',
    placerSystem: env.HL7V2_PLACER_SYSTEM || DEFAULT_PLACER_SYSTEM,
  };
}
