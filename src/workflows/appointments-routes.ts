/**
 * The FHIR routes of the appointments workflow, spliced into the router's table (ROUTES in
 * src/http/fhir-router.ts) ahead of the generic rows: the built-in OperationDefinition reads are
 * literal paths that must win over the generic read of [type]/[id].
 */
import type { Parameters } from 'fhir/r4.js';
import type { Request } from 'express';
import { badRequest } from '../fhir/outcome.js';
import type { InteractionResult } from '../interactions/context.js';
import type { Route } from '../http/fhir-router.js';
import { readBody } from '../http/negotiate.js';
import { appointmentsConfig } from './appointments-settings.js';
import { APPOINTMENT_OPERATION_IDS, builtinOperationDefinition, definitionRef } from './appointments-opdefs.js';
import { bookAppointment, findAppointments } from './appointments-operations.js';
import { createCalendarToken, FEED_TYPES, revokeCalendarTokens } from './calendar-tokens.js';
import { generateAllSlots, generateSlots } from './scheduling-slots.js';

const queryOf = (req: Request) => new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');

/** $find parameters: the query string, plus a Parameters body on POST. */
function findParams(req: Request): URLSearchParams {
  const params = queryOf(req);
  if (req.method === 'POST' && Buffer.isBuffer(req.body) && req.body.length > 0) {
    const body = readBody(req).value as Parameters;
    if (body?.resourceType !== 'Parameters') throw badRequest('POST $find takes a Parameters resource (or use GET with query parameters)');
    for (const p of body.parameter ?? []) {
      const value = p.valueString ?? p.valueDateTime ?? p.valueDate ?? p.valueInstant ?? p.valueCode ?? p.valueUri ?? p.valueReference?.reference ?? (p.valueInteger !== undefined ? String(p.valueInteger) : undefined);
      if (value === undefined) throw badRequest(`$find parameter '${p.name}' has no value of a supported type`);
      params.append(p.name, value);
    }
  }
  return params;
}

function counts(result: { created: number; existing: number }): InteractionResult {
  const body: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'created', valueInteger: result.created },
      { name: 'existing', valueInteger: result.existing },
    ],
  };
  return { status: 200, body };
}

const find = definitionRef('Appointment-find');
const book = definitionRef('Appointment-book');
const generate = definitionRef('Schedule-generate-slots');
const token = definitionRef('calendar-token');

export const APPOINTMENT_ROUTES: Route[] = [
  // Literal ids: other OperationDefinitions are read from the store as usual.
  ...APPOINTMENT_OPERATION_IDS.map((id): Route => ({
    interaction: 'read',
    level: 'instance',
    method: 'GET',
    path: ['OperationDefinition', id],
    handle: async (ctx) => ({ status: 200, body: builtinOperationDefinition(id, ctx.baseUrl) }),
  })),
  { interaction: '$find', level: 'type', method: 'GET', path: ['Appointment', '$find'], definition: find, handle: (ctx, req) => findAppointments(ctx, findParams(req)) },
  { interaction: '$find', level: 'type', method: 'POST', path: ['Appointment', '$find'], definition: find, handle: (ctx, req) => findAppointments(ctx, findParams(req)) },
  { interaction: '$book', level: 'type', method: 'POST', path: ['Appointment', '$book'], write: true, definition: book, handle: (ctx, req) => bookAppointment(ctx, readBody(req).value) },
  { interaction: '$generate-slots', level: 'type', method: 'POST', path: ['Schedule', '$generate-slots'], write: true, definition: generate, handle: async (ctx) => counts(await generateAllSlots(ctx, appointmentsConfig())) },
  {
    interaction: '$generate-slots',
    level: 'instance',
    method: 'POST',
    path: ['Schedule', ':id', '$generate-slots'],
    write: true,
    definition: generate,
    handle: async (ctx, _req, m) => counts(await generateSlots(ctx, m.id!, appointmentsConfig())),
  },
  ...[...FEED_TYPES].flatMap((type): Route[] => [
    { interaction: '$calendar-token', level: 'instance', method: 'POST', path: [type, ':id', '$calendar-token'], write: true, definition: token, handle: (ctx, _req, m) => createCalendarToken(ctx, type, m.id!) },
    { interaction: '$calendar-token', level: 'instance', method: 'DELETE', path: [type, ':id', '$calendar-token'], write: true, definition: token, handle: (ctx, _req, m) => revokeCalendarTokens(ctx, type, m.id!) },
  ]),
];
