/**
 * Printable prescriptions: MedicationRequest/[id]/$pdf renders the request (patient, prescriber,
 * medication, dosage, dates) as a PDF with pdfkit and, in ONE transaction, stores it as a Binary,
 * a DocumentReference (LOINC 57833-6 "Prescription for medication", context.related → the request
 * version) pointing at it, and a Provenance whose target is both, recording the PDF's SHA-256
 * (hex) in the extension CONTENT_SHA256 (Attachment.hash carries the SHA-1 R4 asks for). The
 * answer is the PDF itself (application/pdf), with Content-Location → the Binary.
 *
 * Streams are written uncompressed (pdfkit `compress: false`): a prescription is a page of text,
 * and the text stays searchable in the bytes (tests and archive indexing read it).
 */
import { createHash } from 'node:crypto';
import type { Binary, DocumentReference, HumanName, Medication, MedicationRequest, Patient, Practitioner, Provenance, Reference } from 'fhir/r4.js';
import PDFDocument from 'pdfkit';
import type { InteractionContext, InteractionResult } from '../interactions/context.js';
import { Writer } from '../interactions/writer.js';
import { businessRule, loadForUpdate } from './medication-params.js';
import { describeDosage } from './medication-timing.js';

export const CONTENT_SHA256 = 'https://carebridge.dev/fhir/StructureDefinition/content-sha256';
const PRESCRIPTION_DOC = { system: 'http://loinc.org', code: '57833-6', display: 'Prescription for medication' };

export interface PrescriptionView {
  patient: string;
  patientBirthDate?: string;
  prescriber: string;
  medication: string;
  dosage: string[];
  dispense?: string;
  authoredOn: string;
  requestId: string;
  status: string;
}

const nameOf = (names: HumanName[] | undefined, fallback: string) => {
  const n = names?.[0];
  if (!n) return fallback;
  return n.text ?? [...(n.prefix ?? []), ...(n.given ?? []), n.family].filter(Boolean).join(' ');
};

export function renderPrescriptionPdf(view: PrescriptionView): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const doc = new PDFDocument({ compress: false, size: 'A4', margin: 56, info: { Title: `Prescription ${view.requestId}`, Author: view.prescriber, Creator: 'CareBridge' } });
    const chunks: Buffer[] = [];
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
    doc.fontSize(20).text('Prescription', { align: 'center' }).moveDown();
    const line = (label: string, value: string) => doc.fontSize(11).font('Helvetica-Bold').text(`${label}: `, { continued: true }).font('Helvetica').text(value);
    line('Patient', view.patient + (view.patientBirthDate ? ` (born ${view.patientBirthDate})` : ''));
    line('Prescriber', view.prescriber);
    line('Date', view.authoredOn);
    doc.moveDown();
    line('Medication', view.medication);
    for (const d of view.dosage) line('Dosage', d);
    if (view.dispense) line('Dispense', view.dispense);
    doc.moveDown(2).fontSize(8).fillColor('gray').text(`MedicationRequest/${view.requestId} (${view.status}), printed by CareBridge`);
    doc.end();
  });
}

async function display(w: Writer, ref: Reference | undefined, fallback: string, render: (r: any) => string): Promise<string> {
  if (!ref?.reference) return ref?.display ?? fallback;
  const [type, id] = ref.reference.split('/') as [string, string];
  const v = await w.ctx.store.current(w.tx, type, id ?? '');
  return v && !v.deleted && v.content ? render(JSON.parse(v.content)) : ref.display ?? fallback;
}

async function prescriptionView(w: Writer, request: MedicationRequest): Promise<PrescriptionView> {
  let patientBirthDate: string | undefined;
  const patient = await display(w, request.subject, 'unknown patient', (p: Patient) => {
    patientBirthDate = p.birthDate;
    return nameOf(p.name, request.subject.reference!);
  });
  const prescriber = await display(w, request.requester, 'not recorded', (p: Practitioner) => nameOf(p.name, request.requester!.reference!));
  const concept = request.medicationCodeableConcept;
  const medication = concept
    ? concept.text ?? concept.coding?.[0]?.display ?? concept.coding?.[0]?.code ?? 'unnamed medication'
    : await display(w, request.medicationReference, 'unnamed medication', (m: Medication) => m.code?.text ?? m.code?.coding?.[0]?.display ?? 'unnamed medication');
  const q = request.dispenseRequest?.quantity;
  const repeats = request.dispenseRequest?.numberOfRepeatsAllowed;
  return {
    patient,
    patientBirthDate,
    prescriber,
    medication,
    dosage: (request.dosageInstruction ?? []).map(describeDosage),
    dispense: q?.value !== undefined ? `${q.value} ${q.unit ?? q.code ?? ''}`.trim() + (repeats ? `, ${repeats} repeat${repeats === 1 ? '' : 's'}` : '') : undefined,
    authoredOn: (request.authoredOn ?? request.meta?.lastUpdated ?? '').slice(0, 10),
    requestId: request.id!,
    status: request.status,
  };
}

/** Render and store the prescription of a request (in the writer's transaction); returns the PDF and the Binary id. */
export async function storePrescriptionPdf(w: Writer, requestId: string): Promise<{ pdf: Buffer; binaryId: string; documentId: string }> {
  const { resource: request, versionId } = await loadForUpdate<MedicationRequest>(w, `MedicationRequest/${requestId}`);
  if (request.status === 'entered-in-error' || request.status === 'draft') {
    throw businessRule(`MedicationRequest/${requestId} is ${request.status}; only an issued prescription is printed`, ['MedicationRequest.status']);
  }
  const pdf = await renderPrescriptionPdf(await prescriptionView(w, request));
  const sha256 = createHash('sha256').update(pdf).digest('hex');
  const requestVersion = `MedicationRequest/${requestId}/_history/${versionId}`;
  const binary: Binary = { resourceType: 'Binary', contentType: 'application/pdf', securityContext: { reference: `MedicationRequest/${requestId}` }, data: pdf.toString('base64') };
  const storedBinary = await w.create(w.check(binary, 'Binary'));
  const binaryId = storedBinary.version!.id;
  const document: DocumentReference = {
    resourceType: 'DocumentReference',
    status: 'current',
    docStatus: 'final',
    type: { coding: [PRESCRIPTION_DOC] },
    subject: request.subject,
    date: w.now,
    ...(request.requester ? { author: [request.requester] } : {}),
    description: 'Printable prescription',
    content: [{
      attachment: {
        contentType: 'application/pdf',
        url: `Binary/${binaryId}`,
        size: pdf.length,
        hash: createHash('sha1').update(pdf).digest('base64'),
        title: `prescription-${requestId}.pdf`,
        creation: w.now,
      },
    }],
    context: { related: [{ reference: requestVersion }] },
  };
  const storedDocument = await w.create(w.check(document, 'DocumentReference'));
  const provenance: Provenance = {
    resourceType: 'Provenance',
    extension: [{ url: CONTENT_SHA256, valueString: sha256 }],
    target: [{ reference: `DocumentReference/${storedDocument.version!.id}` }, { reference: `Binary/${binaryId}` }],
    recorded: w.now,
    activity: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', code: 'CREATE', display: 'create' }] },
    agent: [{ who: request.requester ?? { display: 'CareBridge' } }],
    entity: [{ role: 'source', what: { reference: requestVersion } }],
  };
  await w.create(w.check(provenance, 'Provenance'));
  return { pdf, binaryId, documentId: storedDocument.version!.id };
}

export async function prescriptionPdfOperation(ctx: InteractionContext, id: string): Promise<InteractionResult> {
  const { pdf, binaryId } = await ctx.store.db.transaction((tx) => storePrescriptionPdf(new Writer(ctx, tx), id));
  return {
    status: 200,
    raw: { contentType: 'application/pdf', data: pdf, filename: `prescription-${id}.pdf` },
    headers: { 'Content-Location': `${ctx.baseUrl}/Binary/${binaryId}` },
  };
}
