/**
 * The FHIR routes of subscriptions (backport IG operations), spliced into the router's table
 * (ROUTES in src/http/fhir-router.ts); the CapabilityStatement lists them with these definitions.
 */
import type { Request } from 'express';
import type { Route } from '../http/fhir-router.js';
import { EVENTS_DEFINITION, eventsOperation, STATUS_DEFINITION, statusOperation, WS_TOKEN_DEFINITION } from './operations.js';
import { getWsBindingToken } from './ws-token.js';

const queryOf = (req: Request) => new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');

export const SUBSCRIPTION_ROUTES: Route[] = [
  { interaction: '$status', level: 'instance', method: 'GET', path: ['Subscription', ':id', '$status'], definition: STATUS_DEFINITION, handle: (ctx, _req, m) => statusOperation(ctx, [m.id!]) },
  { interaction: '$status', level: 'type', method: 'GET', path: ['Subscription', '$status'], definition: STATUS_DEFINITION, handle: (ctx, req) => statusOperation(ctx, queryOf(req).getAll('id').flatMap((v) => v.split(',')).filter(Boolean)) },
  { interaction: '$get-ws-binding-token', level: 'instance', method: 'GET', path: ['Subscription', ':id', '$get-ws-binding-token'], definition: WS_TOKEN_DEFINITION, handle: (ctx, _req, m) => getWsBindingToken(ctx, m.id!) },
  { interaction: '$get-ws-binding-token', level: 'instance', method: 'POST', path: ['Subscription', ':id', '$get-ws-binding-token'], definition: WS_TOKEN_DEFINITION, handle: (ctx, _req, m) => getWsBindingToken(ctx, m.id!) },
  { interaction: '$events', level: 'instance', method: 'GET', path: ['Subscription', ':id', '$events'], definition: EVENTS_DEFINITION, handle: (ctx, req, m) => eventsOperation(ctx, m.id!, queryOf(req)) },
];
