/**
 * Which elements are "summary" elements (ElementDefinition.isSummary) in the R4 core definitions,
 * for `_summary=true` (search.html#summary). Read from the differentials of the core
 * StructureDefinitions (which carry isSummary; see definitions.ts on why not the snapshots) on
 * first use, then kept as a set of element paths.
 *
 * Inherited elements are looked up on the type that defines them: Patient.id → Resource.id,
 * Patient.text → DomainResource.text, Patient.contact.modifierExtension → BackboneElement.modifierExtension.
 */
import { readFileSync } from 'node:fs';
import { definitionsFile, type ChildElement } from './definitions.js';

const CORE = 'http://hl7.org/fhir/StructureDefinition/';
/** Where inherited elements are defined: of a resource, of a backbone element. */
const RESOURCE_BASES = ['Resource', 'DomainResource'];
const ELEMENT_BASES = ['Element', 'BackboneElement'];

let summaryPaths: Set<string> | undefined;

interface RawSd {
  resourceType?: string;
  url?: string;
  derivation?: string;
  differential?: { element?: { path: string; isSummary?: boolean }[] };
}

function load(): Set<string> {
  if (summaryPaths) return summaryPaths;
  const set = new Set<string>();
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    const bundle = JSON.parse(readFileSync(definitionsFile(file), 'utf8')) as { entry?: { resource?: RawSd }[] };
    for (const entry of bundle.entry ?? []) {
      const sd = entry.resource;
      // Core specialisations only (profiles such as vitalsigns are constraints on them).
      if (sd?.resourceType !== 'StructureDefinition' || !sd.url?.startsWith(CORE) || sd.derivation === 'constraint') continue;
      for (const el of sd.differential?.element ?? []) if (el.isSummary === true) set.add(el.path);
    }
  }
  summaryPaths = set;
  return set;
}

/**
 * True when `child` (an element of the type or backbone element at `ownerPath`, as listed by
 * childElements(ownerPath)) is marked isSummary in R4.
 */
export function isSummaryElement(ownerPath: string, child: ChildElement): boolean {
  const set = load();
  if (set.has(child.path)) return true;
  const name = child.choice ? `${child.name}[x]` : child.name;
  const bases = ownerPath.includes('.') ? ELEMENT_BASES : RESOURCE_BASES;
  return bases.some((b) => set.has(`${b}.${name}`));
}
