/**
 * Index extraction micro-benchmark (src/search/extract.ts, in process): µs and index rows per
 * resource for
 *   - hl7: what the HL7 v2 benchmark (hl7v2.ts) writes — ADT^A01 and ORU^R01 mapped by the repo's
 *     mapper, references rewritten to Type/id and stamped (id, meta) as the writer does, plus one
 *     server Provenance per message;
 *   - synthea: every resource of a few Synthea bundles.
 * Each set is extracted in several rounds; the median round is reported.
 *
 * Golden check: --golden-write FILE stores the corpus and the exact rows (in order) the current
 * code produces; --golden-check FILE re-extracts that same corpus and fails on the first difference.
 *
 *   npx tsx scripts/bench/extract.ts [--rounds 15] [--ms 300] [--bundles 3] [--only hl7|synthea]
 *                                    [--golden-write FILE | --golden-check FILE]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Bundle, Resource } from 'fhir/r4.js';
import { copyWithReferences } from '../../src/fhir/references.js';
import { stamp } from '../../src/interactions/resource-json.js';
import { extractIndexRows } from '../../src/search/extract.js';
import '../../src/search/ucum.js'; // installs the UCUM canonicalizer, as the server does
import { fakeUuid, hl7MessageResources } from './hl7v2-workload.js';
import { defaultCorpusDir, loadCorpus, parseArgs } from './lib.js';

const args = parseArgs(process.argv.slice(2), {
  rounds: 'number',
  ms: 'number',
  bundles: 'number',
  only: 'string',
  'golden-write': 'string',
  'golden-check': 'string',
});
const ROUNDS = (args.get('rounds') as number | undefined) ?? 15;
const ROUND_MS = (args.get('ms') as number | undefined) ?? 300;
const BUNDLES = (args.get('bundles') as number | undefined) ?? 3;
const ONLY = args.get('only') as string | undefined;

// ---------------------------------------------------------------------------------------------
// Corpus

const NOW = '2024-05-01T12:00:00.000Z';
const hl7Resources = (messages: number): Resource[] => hl7MessageResources(messages, NOW).flat();

function syntheaResources(bundles: number): Resource[] {
  const out: Resource[] = [];
  let ids = 1_000_000;
  for (const file of loadCorpus(defaultCorpusDir()).slice(0, bundles)) {
    const bundle = file.bundle as Bundle;
    const local = new Map<string, string>();
    for (const e of bundle.entry ?? []) if (e.fullUrl && e.resource) local.set(e.fullUrl, `${e.resource.resourceType}/${e.resource.id ?? fakeUuid(++ids)}`);
    for (const e of bundle.entry ?? []) {
      if (!e.resource) continue;
      const ref = local.get(e.fullUrl ?? '');
      const copy = copyWithReferences(e.resource, (r) => local.get(r));
      out.push(stamp(copy, ref ? ref.split('/')[1]! : fakeUuid(++ids), 1, NOW));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Golden check

interface Golden {
  sets: Record<string, { resources: Resource[]; rows: unknown[] }>;
}

function goldenCheck(file: string): void {
  const golden = JSON.parse(readFileSync(file, 'utf8')) as Golden;
  let resources = 0;
  let rows = 0;
  for (const [name, set] of Object.entries(golden.sets)) {
    for (let i = 0; i < set.resources.length; i++) {
      const expected = JSON.stringify(set.rows[i]);
      const actual = JSON.stringify(extractIndexRows(set.resources[i]!));
      if (expected !== actual) {
        const r = set.resources[i]!;
        console.error(`golden mismatch in ${name} #${i} (${r.resourceType}/${r.id})\nexpected ${expected}\nactual   ${actual}`);
        process.exit(1);
      }
      resources++;
      rows += (set.rows[i] as unknown[]).length;
    }
  }
  console.log(`golden check OK: ${resources} resources, ${rows} rows identical`);
}

// ---------------------------------------------------------------------------------------------
// Timing

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function bench(name: string, resources: Resource[]): void {
  let rows = 0;
  for (const r of resources) rows += extractIndexRows(r).length;
  // Warm up (compiles evaluators, lets V8 optimise), then size a round to about ROUND_MS.
  let reps = 1;
  for (;;) {
    const t = performance.now();
    for (let k = 0; k < reps; k++) for (const r of resources) extractIndexRows(r);
    const ms = performance.now() - t;
    if (ms >= ROUND_MS / 2) {
      reps = Math.max(1, Math.round((reps * ROUND_MS) / ms));
      break;
    }
    reps *= 2;
  }
  const perResource: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t = performance.now();
    for (let k = 0; k < reps; k++) for (const r of resources) extractIndexRows(r);
    perResource.push(((performance.now() - t) * 1000) / (reps * resources.length));
  }
  const byType = new Map<string, number>();
  for (const r of resources) byType.set(r.resourceType, (byType.get(r.resourceType) ?? 0) + 1);
  console.log(
    `${name.padEnd(8)} ${String(resources.length).padStart(5)} resources  ${(rows / resources.length).toFixed(1).padStart(5)} rows/resource  ` +
      `median ${median(perResource).toFixed(2)} µs/resource (min ${Math.min(...perResource).toFixed(2)}, max ${Math.max(...perResource).toFixed(2)}, ${ROUNDS} rounds × ${reps})`,
  );
}

function main(): void {
  const check = args.get('golden-check') as string | undefined;
  if (check) return goldenCheck(check);
  const sets: Record<string, Resource[]> = {};
  if (ONLY !== 'synthea') sets.hl7 = hl7Resources(20);
  if (ONLY !== 'hl7') sets.synthea = syntheaResources(BUNDLES);
  const write = args.get('golden-write') as string | undefined;
  if (write) {
    const golden: Golden = { sets: {} };
    for (const [name, resources] of Object.entries(sets)) golden.sets[name] = { resources, rows: resources.map((r) => extractIndexRows(r)) };
    writeFileSync(write, JSON.stringify(golden));
    console.log(`golden written to ${write}`);
    return;
  }
  for (const [name, resources] of Object.entries(sets)) bench(name, resources);
}

main();
