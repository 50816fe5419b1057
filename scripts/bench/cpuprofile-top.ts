/**
 * Summarise V8 .cpuprofile files (e.g. from `ingest.ts --cpu-prof DIR`): the functions with the
 * most self time, the most inclusive time, and self time per package / source file.
 *
 *   npx tsx scripts/bench/cpuprofile-top.ts DIR|FILE... [--top N] [--skip-ms MS]
 *
 * --skip-ms leaves out the first MS milliseconds of each profile (process start-up, warm-up).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { formatTable, parseArgs } from './lib.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const src = url.search(/\/(src|scripts|test)\//);
  if (src >= 0) return url.slice(src + 1);
  return url.replace(/^file:\/\//, '');
}

/** Where time goes, coarsely: an npm package, a src/ file, node internals, or V8/GC. */
function bucket(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return 'node internals';
  return shortUrl(url);
}

function main(): void {
  const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--top' && all[i - 1] !== '--skip-ms');
  const args = parseArgs(process.argv.slice(2).filter((a) => !positional.includes(a)), { top: 'number', 'skip-ms': 'number' });
  const skipUs = ((args.get('skip-ms') as number | undefined) ?? 0) * 1000;
  const top = (args.get('top') as number | undefined) ?? 25;
  const files = positional.flatMap((p) => (statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(p, f)) : [p]));
  if (files.length === 0) throw new Error('usage: cpuprofile-top.ts DIR|FILE... [--top N] [--skip-ms MS]');

  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const byBucket = new Map<string, number>();
  let allMs = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    // Time per sample from timeDeltas (µs); fall back to an even split of the duration.
    const selfMs = new Map<number, number>();
    if (profile.samples && profile.timeDeltas) {
      let at = profile.startTime;
      for (let i = 0; i < profile.samples.length; i++) {
        at += profile.timeDeltas[i] ?? 0;
        if (at - profile.startTime < skipUs) continue;
        const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
        selfMs.set(profile.samples[i]!, (selfMs.get(profile.samples[i]!) ?? 0) + Math.max(0, dt));
      }
    } else {
      const hits = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
      const per = (profile.endTime - profile.startTime) / 1000 / hits;
      for (const n of profile.nodes) selfMs.set(n.id, (n.hitCount ?? 0) * per);
    }
    const key = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'}  ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    for (const [id, ms] of selfMs) {
      const node = byId.get(id)!;
      if (node.callFrame.functionName === '(idle)' || node.callFrame.functionName === '(program)') continue;
      allMs += ms;
      self.set(key(node), (self.get(key(node)) ?? 0) + ms);
      const b = bucket(node.callFrame.url, node.callFrame.functionName);
      byBucket.set(b, (byBucket.get(b) ?? 0) + ms);
      // Inclusive time: charge every distinct frame on the stack once.
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const k = key(byId.get(cur)!);
        if (seen.has(k)) continue;
        seen.add(k);
        total.set(k, (total.get(k) ?? 0) + ms);
      }
    }
  }
  const pct = (ms: number) => `${((100 * ms) / allMs).toFixed(1)}%`;
  const rows = (m: Map<string, number>, n: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, ms]) => [k, ms.toFixed(0), pct(ms)]);
  console.log(`${files.length} profile(s), ${(allMs / 1000).toFixed(2)} s of busy CPU (idle and (program) excluded)\n`);
  console.log(formatTable(['self time by package / file', 'ms', '%'], rows(byBucket, top)));
  console.log('');
  console.log(formatTable(['self time by function', 'ms', '%'], rows(self, top)));
  console.log('');
  const inclusive = new Map([...total].filter(([k]) => !k.startsWith('(root)')));
  console.log(formatTable(['inclusive time by function', 'ms', '%'], rows(inclusive, top)));
}

main();
