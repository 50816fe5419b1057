/**
 * The FHIR routes of the prescription and lab-order workflows, spliced into the router's table
 * (ROUTES in src/http/fhir-router.ts). Every operation is a POST on an instance (they all write);
 * the built-in OperationDefinition reads are literal paths, so they win over [type]/[id].
 */
import type { Request } from 'express';
import type { Route } from '../http/fhir-router.js';
import { readBody } from '../http/negotiate.js';
import type { InteractionContext, InteractionResult } from '../interactions/context.js';
import { PRESCRIPTION_OPERATIONS, prescriptionOperationDefinition } from './medication-opdefs.js';
import type { OperationInput } from './medication-params.js';
import { approveRenewal, rejectRenewal } from './medication-renewal.js';
import { applyActivityDefinition } from './medication-templates.js';
import { prescriptionPdfOperation } from './pdf-prescription.js';
import { createPdfLink, revokePdfLinks } from './pdf-share.js';
import { acceptTask, rejectTask } from './referral-tasks.js';

const inputOf = (req: Request): OperationInput => ({
  query: new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : ''),
  body: Buffer.isBuffer(req.body) && req.body.length > 0 ? readBody(req).value : undefined,
});

type Operation = (ctx: InteractionContext, id: string, input: OperationInput) => Promise<InteractionResult>;

const HANDLERS: Record<string, Operation> = {
  'ActivityDefinition-apply': applyActivityDefinition,
  'MedicationRequest-pdf': (ctx, id) => prescriptionPdfOperation(ctx, id),
  'MedicationRequest-pdf-link': (ctx, id, input) => createPdfLink(ctx, id, input),
  'MedicationRequest-pdf-link-revoke': (ctx, id, input) => revokePdfLinks(ctx, id, input),
  'Task-approve-renewal': approveRenewal,
  'Task-reject-renewal': rejectRenewal,
  'Task-accept': acceptTask,
  'Task-reject': rejectTask,
};

export const PRESCRIPTION_ROUTES: Route[] = PRESCRIPTION_OPERATIONS.flatMap((spec): Route[] => [
  {
    interaction: 'read',
    level: 'instance',
    method: 'GET',
    path: ['OperationDefinition', spec.id],
    handle: async (ctx) => ({ status: 200, body: prescriptionOperationDefinition(spec, ctx.baseUrl) }),
  },
  {
    interaction: `$${spec.code}`,
    level: 'instance',
    method: 'POST',
    path: [spec.resource, ':id', `$${spec.code}`],
    write: true,
    definition: `OperationDefinition/${spec.id}`,
    ...(spec.code === 'pdf' ? { produces: 'application/pdf' } : {}),
    handle: (ctx, req, m) => HANDLERS[spec.id]!(ctx, m.id!, inputOf(req)),
  },
]);
