/**
 * The R4 element model: how the element definitions of the core StructureDefinition differentials
 * become a flat index of every element of every type (inherited elements re-pathed onto each
 * specialization), and how a dotted path is resolved against that index.
 *
 * No file access here: definitions.ts reads the bundles, picks the core specializations, and hands
 * their differentials over; this module only shapes them. See definitions.ts for why the model is
 * built from differentials rather than snapshots.
 */

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

export const CORE_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';
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

/** 'quantity' → 'Quantity': choice elements put their type, capitalised, after the name ('valueQuantity'). */
export const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/* ------------------------------------------------------------------ raw definitions */

interface RawType {
  code: string;
  targetProfile?: string[];
  extension?: { url: string; valueUrl?: string; valueUri?: string }[];
}
export interface RawElement {
  path: string;
  min?: number;
  max?: string;
  type?: RawType[];
  contentReference?: string;
  binding?: { strength?: string; valueSet?: string };
}
export interface RawStructureDefinition {
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

export interface TypeDef {
  name: string;
  kind: TypeKind;
  abstract: boolean;
  base?: string;
  /** Own elements (from the differential), keyed by path, excluding the root. */
  own: RawElement[];
}

export interface Model {
  version: string;
  resourceTypes: readonly string[];
  resourceSet: ReadonlySet<string>;
  types: Map<string, TypeDef>;
  /** Every element of every type (inherited ones re-pathed), keyed by path. */
  elements: Map<string, ChildElement>;
  /** Children of a type name or of a backbone element path. */
  children: Map<string, ChildElement[]>;
}

export function isCoreSpecialization(sd: RawStructureDefinition): boolean {
  return (
    sd.resourceType === 'StructureDefinition' &&
    sd.url === CORE_PREFIX + sd.type &&
    (sd.derivation === 'specialization' || sd.baseDefinition === undefined) &&
    // Medplum ships the R4B SubscriptionStatus (fhirVersion 4.3.0) in the R4 bundle.
    (sd.fhirVersion === undefined || sd.fhirVersion === '4.0.1') &&
    !!sd.differential
  );
}

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

/* ------------------------------------------------------------------ indexing */

/** One element from a differential, completed by what it overrides from the base type (if anything). */
function toChild(raw: RawElement, path: string, inherited?: ChildElement): ChildElement {
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
}

/**
 * Every element of every type, keyed by path, and the children of each type / backbone path.
 * Types are built base-first so each can copy (and re-path) what it inherits.
 */
export function indexElements(types: Map<string, TypeDef>): Pick<Model, 'elements' | 'children'> {
  const elements = new Map<string, ChildElement>();
  const children = new Map<string, ChildElement[]>();
  const done = new Set<string>();
  const byType = new Map<string, ChildElement[]>();

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
  return { elements, children };
}

/* ------------------------------------------------------------------ path resolution */

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

/** Resolves a dotted path segment by segment (uncached; see elementInfo in definitions.ts). */
export function resolveElement(m: Model, path: string): ElementInfo | undefined {
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
  return result;
}
