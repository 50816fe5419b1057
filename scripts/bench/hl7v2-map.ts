/**
 * HL7 v2 inbound CPU, in process: the messages scripts/bench/hl7v2.ts streams (ADT^A01 and
 * ORU^R01, each a different patient and order), CPU time per stage in µs per message — parse,
 * map (readHeader + structureFor + map), copyWithReferences of the plan's resources (urn:uuid
 * references resolved, as the write paths do) and validateResource of those copies. No
 * database, no sockets: what the server spends between a frame and its first SQL statement.
 *
 *   npx tsx scripts/bench/hl7v2-map.ts [--messages 400] [--rounds 9] [--against DIR] [--src DIR]
 *   npx tsx scripts/bench/hl7v2-map.ts --golden-write FILE | --golden-check FILE
 *
 * --against DIR times a second source tree too (e.g. `git archive <commit> src mappings` unpacked
 * in DIR with node_modules linked), rounds interleaved old/new so that both see the same machine
 * load; medians of the rounds are printed. --src DIR times that tree instead of this one.
 *
 * The golden output is, for every fixtures/hl7v2/*.hl7 (as stored and with CR segment ends), a
 * set of deterministic variants of them (segments dropped, fields replaced by odd values) and the
 * benchmark's messages: the prepared result (header, rejection, data issue, plan), the ACK, the
 * validation issues and the reference-rewritten copies, as JSON with uuids numbered in order of
 * appearance and the ACK's MSH-7/MSH-10 blanked. It must stay byte-identical across optimisations.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchMessage, crOnly, fixtureText, setAll } from './hl7v2-workload.js';
import { formatTable, parseArgs, prng, REPO_ROOT } from './lib.js';

type ParserModule = typeof import('../../src/hl7v2/parser.js');
type MapperModule = typeof import('../../src/hl7v2/mapper.js');
type ConfigModule = typeof import('../../src/hl7v2/mapping-config.js');
type ReferencesModule = typeof import('../../src/fhir/references.js');
type ValidatorModule = typeof import('../../src/fhir/validator.js');
type InboundModule = typeof import('../../src/hl7v2/inbound.js');
type AckModule = typeof import('../../src/hl7v2/ack.js');

const args = parseArgs(process.argv.slice(2), {
  messages: 'number',
  rounds: 'number',
  against: 'string',
  src: 'string',
  'golden-write': 'string',
  'golden-check': 'string',
});
const N = (args.get('messages') as number | undefined) ?? 400;
const ROUNDS = (args.get('rounds') as number | undefined) ?? 9;

/** One source tree's modules and a mapper over its mappings. */
interface Impl {
  label: string;
  parser: ParserModule;
  mapper: InstanceType<MapperModule['Mapper']>;
  references: ReferencesModule;
  validator: ValidatorModule;
  inbound: InboundModule;
  ack: AckModule;
}

async function load(root: string, label: string): Promise<Impl> {
  const mod = async <T>(path: string) => (await import(pathToFileURL(join(root, path)).href)) as T;
  const config = await mod<ConfigModule>('src/hl7v2/mapping-config.ts');
  const mapperModule = await mod<MapperModule>('src/hl7v2/mapper.ts');
  const validator = await mod<ValidatorModule>('src/fhir/validator.ts');
  validator.warmUpValidators();
  return {
    label,
    parser: await mod<ParserModule>('src/hl7v2/parser.ts'),
    mapper: new mapperModule.Mapper(config.loadMappingConfig(join(root, 'mappings'))),
    references: await mod<ReferencesModule>('src/fhir/references.ts'),
    validator,
    inbound: await mod<InboundModule>('src/hl7v2/inbound.ts'),
    ack: await mod<AckModule>('src/hl7v2/ack.ts'),
  };
}

// ---------------------------------------------------------------------------------------------
// Workload: as scripts/bench/hl7v2.ts builds it

/** urn:uuid → Type/id as the write paths resolve them (a stable fake id per uuid). */
function resolverFor(entries: Array<{ fullUrl: string; resource: { resourceType: string } }>): (ref: string) => string | undefined {
  const resolved = new Map(entries.map((e, i) => [e.fullUrl, `${e.resource.resourceType}/id-${i}`]));
  return (ref) => (ref.startsWith('urn:uuid:') ? resolved.get(ref) : undefined);
}

// ---------------------------------------------------------------------------------------------
// Timing

interface Stages {
  parse: number;
  map: number;
  copy: number;
  validate: number;
}

/** The inputs of each stage, made once: every stage is timed on its own, on the same data each round. */
interface Inputs {
  raws: string[];
  msgs: Array<ReturnType<ParserModule['parseMessage']>>;
  plans: Array<ReturnType<Impl['mapper']['map']>>;
  copies: Array<Array<{ resourceType: string }>>;
}

function prepareInputs(impl: Impl, raws: string[]): Inputs {
  const msgs = raws.map((raw) => impl.parser.parseMessage(raw));
  const plans = msgs.map((msg) => {
    const header = impl.parser.readHeader(msg);
    return impl.mapper.map(msg, header, impl.mapper.structureFor(header)!);
  });
  const copies = plans.map((plan) => copyAll(impl, plan));
  return { raws, msgs, plans, copies };
}

function copyAll(impl: Impl, plan: Inputs['plans'][number]): Array<{ resourceType: string }> {
  const fn = resolverFor(plan.entries);
  return plan.entries.map((e) => impl.references.copyWithReferences(e.resource, fn));
}

/** CPU ms of fn (this process, all threads: GC helpers included; steadier than wall time on a shared machine). */
function cpu(fn: () => void): number {
  const before = process.cpuUsage();
  fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

function timeStages(impl: Impl, inputs: Inputs): Stages {
  const { parseMessage, readHeader } = impl.parser;
  const mapper = impl.mapper;
  let issues = 0;
  const parse = cpu(() => {
    for (const raw of inputs.raws) parseMessage(raw);
  });
  const map = cpu(() => {
    for (const msg of inputs.msgs) {
      const header = readHeader(msg);
      mapper.map(msg, header, mapper.structureFor(header)!);
    }
  });
  const copy = cpu(() => {
    for (const plan of inputs.plans) copyAll(impl, plan);
  });
  const validate = cpu(() => {
    for (const list of inputs.copies) for (const r of list) issues += impl.validator.validateResource(r, r.resourceType).length;
  });
  if (issues !== 0) throw new Error(`${impl.label}: the benchmark messages do not validate (${issues} issues)`);
  const per = (ms: number) => (ms * 1000) / inputs.raws.length;
  return { parse: per(parse), map: per(map), copy: per(copy), validate: per(validate) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function bench(impls: Impl[]): Promise<void> {
  const run = Date.now().toString(36);
  const raws = Array.from({ length: N }, (_, i) => benchMessage(run, i));
  const results = impls.map(() => [] as Stages[]);
  const inputs = impls.map((impl) => prepareInputs(impl, raws));
  // Warm-up: JIT and caches (ucum, validators) of every implementation.
  for (let w = 0; w < 3; w++) impls.forEach((impl, i) => timeStages(impl, inputs[i]!));
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which implementation goes first so neither always follows the other's garbage.
    const order = r % 2 === 0 ? impls.map((_, i) => i) : impls.map((_, i) => impls.length - 1 - i);
    for (const i of order) results[i]!.push(timeStages(impls[i]!, inputs[i]!));
  }
  const keys: Array<keyof Stages> = ['parse', 'map', 'copy', 'validate'];
  const table = (pick: (xs: number[]) => number) =>
    formatTable(
      ['', 'parse', 'map', 'copy', 'validate', 'parse+map', 'all'],
      impls.map((impl, i) => {
        const m = keys.map((k) => pick(results[i]!.map((s) => s[k])));
        return [impl.label, ...m.map((v) => v.toFixed(1)), (m[0]! + m[1]!).toFixed(1), m.reduce((a, b) => a + b, 0).toFixed(1)];
      }),
    );
  console.log(`${N} messages (ADT^A01 / ORU^R01 alternating), ${ROUNDS} rounds, CPU µs per message, median of the rounds`);
  console.log(table(median));
  // The fastest round: least disturbed by other work on a shared machine.
  console.log('minimum of the rounds');
  console.log(table((xs) => Math.min(...xs)));
}

// ---------------------------------------------------------------------------------------------
// Golden output

const ODD_VALUES = ['', '""', 'abc', '20201340', '2020-01-01', '1.2.3', 'X\\F\\Y\\S\\Z', '^^^', '~~', '&&&', '12^mg^UCUM', 'Y', 'N', 'F', '\\X41\\B', '-5', '<5', '1:2', '9999999999999999'];

/** Deterministic variants of a message: a segment dropped, a field replaced by an odd value. */
function variants(text: string, seed: number): string[] {
  const segments = crOnly(text).split('\r');
  const random = prng(seed);
  const out: string[] = [];
  for (let k = 1; k < segments.length && k < 6; k++) out.push(segments.filter((_, i) => i !== k).join('\r'));
  for (let k = 0; k < 24; k++) {
    const s = 1 + Math.floor(random() * (segments.length - 1));
    const fields = segments[s]!.split('|');
    if (fields.length < 2) continue;
    const f = 1 + Math.floor(random() * (fields.length - 1));
    const copy = [...fields];
    copy[f] = ODD_VALUES[Math.floor(random() * ODD_VALUES.length)]!;
    out.push(segments.map((seg, i) => (i === s ? copy.join('|') : seg)).join('\r'));
  }
  return out;
}

function goldenInputs(): Array<[string, string]> {
  const inputs: Array<[string, string]> = [];
  const files = readdirSync(join(REPO_ROOT, 'fixtures/hl7v2'))
    .filter((f) => f.endsWith('.hl7'))
    .sort();
  files.forEach((file, i) => {
    const text = fixtureText(file);
    inputs.push([file, text], [`${file} (CR)`, crOnly(text)]);
    variants(text, 1000 + i).forEach((v, k) => inputs.push([`${file} variant ${k}`, v]));
  });
  for (let i = 0; i < 40; i++) inputs.push([`bench ${i}`, benchMessage('golden', i)]);
  // Rejections (AR) and unreadable messages.
  const adt = benchMessage('golden', 0);
  for (const [n, v] of [[9, 'ZZZ^A01'], [9, 'ADT^A99'], [12, '9.9'], [10, ''], [18, '8859/1']] as const) inputs.push([`MSH-${n} ${v}`, setAll(adt, 'MSH', n, v)]);
  for (const broken of ['', 'PID|1', 'MSH|^~', 'MSH|^~\\&', 'MSH|^^\\&|A', `\uFEFF  ${adt}`, `${adt}\rMSH|^~\\&|X`, `${adt}\rpid|1`, `${adt}\rPID^1`]) inputs.push([`broken ${JSON.stringify(broken.slice(0, 12))}`, broken]);
  return inputs;
}

/** Uuids numbered in order of appearance: fullUrls are random, their structure is not. */
function normalizeUuids(json: string): string {
  const seen = new Map<string, string>();
  return json.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (u) => {
    let n = seen.get(u);
    if (!n) seen.set(u, (n = `uuid-${seen.size + 1}`));
    return n;
  });
}

/** The ACK with MSH-7 (time) and MSH-10 (our control id) blanked. */
function stableAck(ack: string): string {
  const [msh, ...rest] = ack.split('\r');
  const fields = msh!.split(ack[3] ?? '|');
  fields[6] = '<time>';
  fields[9] = '<id>';
  return [fields.join(ack[3] ?? '|'), ...rest].join('\r');
}

function golden(impl: Impl): string {
  const handler = new impl.inbound.InboundHandler({ mapper: impl.mapper } as never) as unknown as {
    prepare(raw: string): { separators: never; header: never; rejection?: never; dataIssue?: never; plan?: { entries: Array<{ fullUrl: string; resource: { resourceType: string } }> } };
  };
  const lines: string[] = [];
  for (const [name, raw] of goldenInputs()) {
    const p = handler.prepare(raw);
    const code = p.rejection ? 'AR' : p.dataIssue ? 'AE' : 'AA';
    const ack = stableAck(impl.ack.buildAck({ separators: p.separators, header: p.header, code, issue: p.rejection ?? p.dataIssue }));
    const entries = p.plan?.entries ?? [];
    const fn = resolverFor(entries);
    const copies = entries.map((e) => impl.references.copyWithReferences(e.resource, fn));
    const validation = copies.map((c) => impl.validator.validateResource(c, c.resourceType));
    lines.push(normalizeUuids(JSON.stringify({ name, prepared: p, ack, copies, validation })));
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const src = args.get('src') as string | undefined;
  const current = await load(src ?? REPO_ROOT, src ?? 'this tree');
  const write = args.get('golden-write') as string | undefined;
  const check = args.get('golden-check') as string | undefined;
  if (write || check) {
    const out = golden(current);
    if (write) {
      writeFileSync(write, out);
      console.log(`golden output: ${out.split('\n').length - 1} messages written to ${write}`);
      return;
    }
    const expected = readFileSync(check!, 'utf8').split('\n');
    const actual = out.split('\n');
    const differ = actual.map((line, i) => (line === expected[i] ? -1 : i)).filter((i) => i >= 0);
    if (differ.length === 0 && expected.length === actual.length) {
      console.log(`golden output: ${actual.length - 1} messages identical to ${check}`);
      return;
    }
    console.log(`golden output differs in ${differ.length} of ${actual.length - 1} messages; first:`);
    const i = differ[0] ?? actual.length;
    console.log(`expected: ${expected[i]?.slice(0, 2000)}\nactual:   ${actual[i]?.slice(0, 2000)}`);
    process.exit(1);
  }
  const against = args.get('against') as string | undefined;
  const impls = against ? [await load(against, against), current] : [current];
  await bench(impls);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
