/**
 * Prescription templates: an ActivityDefinition of kind MedicationRequest (product and dosage)
 * applied to a patient with ActivityDefinition/[id]/$apply.
 *
 * Decision: R4 $apply returns "the resource that is the result of applying the definition" (for a
 * single ActivityDefinition that may be the request itself rather than a CarePlan). CareBridge
 * returns the MedicationRequest AND stores it, as a draft: the prescriber reviews it and moves it
 * to active with an ordinary update (the lifecycle rule allows draft → active). The answer is 201
 * with the Location of the stored draft. The draft gets a placer order number (withPlacerNumber).
 */
import { randomUUID } from 'node:crypto';
import type { ActivityDefinition, MedicationRequest } from 'fhir/r4.js';
import type { InteractionContext, InteractionResult } from '../interactions/context.js';
import { writeResult } from '../interactions/write-result.js';
import { Writer } from '../interactions/writer.js';
import { DEFAULT_PLACER_SYSTEM } from '../hl7v2/outbound/settings.js';
import { businessRule, loadForUpdate, OperationParams, type OperationInput } from './medication-params.js';

let placerSystem = DEFAULT_PLACER_SYSTEM;

/** HL7V2_PLACER_SYSTEM, set at server start: the system of the placer numbers CareBridge assigns. */
export function configurePlacerSystem(system: string): void {
  placerSystem = system;
}

/**
 * The request with a placer order number (identifier typed PLAC) when it has none: system
 * HL7V2_PLACER_SYSTEM, value its id. HL7 v2 outbound sends it as ORC-2, and the pharmacy's or
 * lab's answer (RDS^O13, ORU^R01) is matched back on it, so prescriptions made here always carry one
 * (orders without one are sent as the same number and found by id: src/hl7v2/own-orders.ts).
 */
export function withPlacerNumber<T extends { identifier?: MedicationRequest['identifier'] }>(request: T, id: string): T {
  if (request.identifier?.some((i) => i.type?.coding?.some((c) => c.code === 'PLAC'))) return request;
  const placer = { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PLAC' }] }, system: placerSystem, value: id };
  return { ...request, identifier: [...(request.identifier ?? []), placer] };
}

const MEDICATION_REQUEST_INTENTS = new Set(['proposal', 'plan', 'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order', 'option']);

/** The draft MedicationRequest an ActivityDefinition describes for a subject. */
export function medicationRequestFrom(
  definition: ActivityDefinition,
  target: { subject: string; requester?: string; encounter?: string; authoredOn: string },
): MedicationRequest {
  const request: MedicationRequest = {
    resourceType: 'MedicationRequest',
    status: 'draft',
    intent: (definition.intent && MEDICATION_REQUEST_INTENTS.has(definition.intent) ? definition.intent : 'order') as MedicationRequest['intent'],
    subject: { reference: target.subject },
    authoredOn: target.authoredOn,
  };
  if (definition.productCodeableConcept) request.medicationCodeableConcept = definition.productCodeableConcept;
  if (definition.productReference) request.medicationReference = definition.productReference;
  if (definition.priority) request.priority = definition.priority;
  if (definition.url) request.instantiatesCanonical = [definition.version ? `${definition.url}|${definition.version}` : definition.url];
  if (definition.dosage?.length) request.dosageInstruction = definition.dosage;
  if (definition.quantity) request.dispenseRequest = { quantity: definition.quantity };
  if (definition.code) request.category = [definition.code];
  if (target.requester) request.requester = { reference: target.requester };
  if (target.encounter) request.encounter = { reference: target.encounter };
  return request;
}

export function applyActivityDefinition(ctx: InteractionContext, id: string, input: OperationInput): Promise<InteractionResult> {
  const params = new OperationParams(input);
  const subject = params.reference('subject', ['Patient']);
  if (!subject) params.required('subject');
  const requester = params.reference('practitioner', ['Practitioner', 'PractitionerRole']);
  const encounter = params.reference('encounter', ['Encounter']);
  return ctx.store.db.transaction(async (tx) => {
    const w = new Writer(ctx, tx);
    const { resource: definition } = await loadForUpdate<ActivityDefinition>(w, `ActivityDefinition/${id}`);
    if (definition.kind !== 'MedicationRequest') {
      throw businessRule(`ActivityDefinition/${id} is of kind '${definition.kind ?? '(none)'}'; $apply here makes MedicationRequests only`, ['ActivityDefinition.kind']);
    }
    if (definition.status === 'retired') throw businessRule(`ActivityDefinition/${id} is retired`, ['ActivityDefinition.status']);
    if (!definition.productCodeableConcept && !definition.productReference) {
      throw businessRule(`ActivityDefinition/${id} names no product (productCodeableConcept or productReference)`, ['ActivityDefinition.product[x]']);
    }
    // The subject and the others must exist: a draft for nobody is no use (422, not 404: the URL's resource was found).
    for (const ref of [subject!, requester, encounter]) {
      if (!ref) continue;
      const [type, rid] = ref.split('/') as [string, string];
      const found = await ctx.store.current(tx, type, rid);
      if (!found || found.deleted) throw businessRule(`${ref} is not known`, [ref.split('/')[0]!.toLowerCase()]);
    }
    const newId = randomUUID();
    const request = withPlacerNumber(medicationRequestFrom(definition, { subject: subject!, requester, encounter, authoredOn: w.now }), newId);
    return writeResult(await w.create(w.check(request, 'MedicationRequest'), { id: newId }));
  });
}
