/**
 * Who may receive what, and where notifications may go.
 *
 * - Endpoint allow-list (SUBSCRIPTION_ALLOWED_HOSTS): hosts a rest-hook endpoint may name, checked
 *   when a Subscription is written (400) and again before every delivery (a list tightened after
 *   the subscription was accepted still holds). Unset = any host.
 * - Owner filtering: the access of whoever created a subscription is stored with it (write rule
 *   below, subscription_state.owner) and `mayRead` is asked before an event is numbered for it.
 *   THE one place where authorization decides what a subscriber may be told about.
 */
import type { Resource } from 'fhir/r4.js';
import type { Access } from '../auth/access.js';
import { ownerMayRead } from '../auth/policy.js';
import { registerWriteRule } from '../interactions/write-rules.js';
import { resetState } from './numbering.js';

let allowedHosts: string[] | undefined;

/** Set the allow-list for this process (from Config.subscriptionAllowedHosts; undefined = any host). */
export function setAllowedHosts(hosts: readonly string[] | undefined): void {
  allowedHosts = hosts && hosts.length > 0 ? hosts.map((h) => h.trim().toLowerCase()).filter(Boolean) : undefined;
}

/** Whether the URL's host is allowed (`*.lab.example` matches a.lab.example, not lab.example itself). */
export function hostAllowed(url: URL): boolean {
  if (!allowedHosts) return true;
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return allowedHosts.some((pattern) => (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern));
}

/**
 * Owner filtering hook: may the subscription's owner read this resource? Called by the matcher
 * before an event is numbered (a filtered event is never numbered, so receivers see no gap).
 * Owner undefined (auth off or server-created): everything. Otherwise the owner's SMART scopes and
 * patient compartment decide (src/auth/policy.ts ownerMayRead).
 */
export function mayRead(owner: Access | undefined, resourceType: string, resource: Resource | undefined): boolean {
  return ownerMayRead(owner, resourceType, resource);
}

/** Record the creator of every new Subscription (and reset numbering when one is re-created). */
registerWriteRule({
  name: 'subscription-owner',
  types: ['Subscription'], // a literal: validate.ts imports this module
  async apply(writer, change) {
    if (change.action !== 'create') return;
    await resetState(writer.tx, writer.ctx.store.schema, change.id, writer.ctx.access);
  },
});
