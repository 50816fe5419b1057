/**
 * $reindex (system and type level): re-extract the search index of existing resources with the
 * tenant's current search parameters, e.g. after creating a SearchParameter. Asynchronous
 * (async.html pattern): 202 Accepted with Content-Location of a status URL,
 * GET [base]/$reindex/[jobId], which answers 202 with X-Progress while the job runs and 200 once it
 * has ended, both with a Parameters resource (status, total, processed, rate...).
 *
 * Input: the type from the URL, or `type` parameters (codes, or comma-separated lists) in a
 * Parameters body or the query string; none means every type. The job runs in the background of
 * this process (src/search/reindex-job.ts), its progress is in the tenant's database.
 */
import type { Parameters, ParametersParameter } from 'fhir/r4.js';
import { isResourceType } from '../fhir/definitions.js';
import { badRequest, informational, notFound } from '../fhir/outcome.js';
import { reindexStatus, startReindexJob, type ReindexProgress } from '../search/reindex-job.js';
import type { InteractionContext, InteractionResult } from './context.js';

function requestedTypes(resourceType: string | undefined, input: { body?: unknown; query: URLSearchParams }): string[] | undefined {
  if (resourceType) return [resourceType];
  const raw: string[] = [...input.query.getAll('type')];
  const body = input.body as Parameters | undefined;
  if (body !== undefined) {
    if (body?.resourceType !== 'Parameters') throw badRequest('The body of $reindex must be a Parameters resource');
    for (const p of body.parameter ?? []) {
      if (p.name !== 'type') throw badRequest(`Unknown $reindex parameter '${p.name}' (expected 'type')`);
      const v = p.valueCode ?? p.valueString;
      if (typeof v !== 'string') throw badRequest("$reindex parameter 'type' needs a valueCode");
      raw.push(v);
    }
  }
  const types = [...new Set(raw.flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean))];
  for (const t of types) if (!isResourceType(t)) throw badRequest(`'${t}' is not an R4 resource type`, ['type']);
  return types.length > 0 ? types : undefined;
}

export async function reindexOperation(
  ctx: InteractionContext,
  resourceType: string | undefined,
  input: { body?: unknown; query: URLSearchParams },
): Promise<InteractionResult> {
  const types = requestedTypes(resourceType, input);
  const jobId = await startReindexJob(ctx.store, { types });
  const status = `${ctx.baseUrl}/$reindex/${jobId}`;
  return {
    status: 202,
    headers: { 'Content-Location': status },
    body: informational(`Reindex job ${jobId} started for ${types ? types.join(', ') : 'all resource types'}; its progress is at ${status}`),
  };
}

const integer = (name: string, n: number): ParametersParameter =>
  Number.isSafeInteger(n) && Math.abs(n) <= 2147483647 ? { name, valueInteger: n } : { name, valueDecimal: n };

/** The Parameters describing a job's progress. */
export function progressParameters(p: ReindexProgress): Parameters {
  const parameter: ParametersParameter[] = [
    { name: 'jobId', valueString: p.jobId },
    { name: 'status', valueCode: p.state },
    ...(p.types ?? []).map((t) => ({ name: 'type', valueCode: t })),
    integer('total', p.total),
    integer('processed', p.processed),
    { name: 'ratePerSecond', valueDecimal: p.ratePerSecond },
    { name: 'createdAt', valueInstant: p.createdAt },
    ...(p.startedAt ? [{ name: 'startedAt', valueInstant: p.startedAt }] : []),
    { name: 'updatedAt', valueInstant: p.updatedAt },
    ...(p.finishedAt ? [{ name: 'finishedAt', valueInstant: p.finishedAt }] : []),
    ...(p.stalled ? [{ name: 'stalled', valueBoolean: true }] : []),
    ...(p.error ? [{ name: 'error', valueString: p.error }] : []),
  ];
  return { resourceType: 'Parameters', parameter };
}

export async function reindexStatusOperation(ctx: InteractionContext, jobId: string): Promise<InteractionResult> {
  const progress = await reindexStatus(ctx.store, jobId);
  if (!progress) throw notFound(`No reindex job '${jobId}'`);
  const active = progress.state === 'queued' || progress.state === 'running';
  const percent = progress.total > 0 ? ` (${Math.floor((progress.processed / progress.total) * 100)}%)` : '';
  return {
    status: active ? 202 : 200,
    headers: { 'X-Progress': `${progress.state}: ${progress.processed}/${progress.total}${percent}` },
    body: progressParameters(progress),
  };
}
