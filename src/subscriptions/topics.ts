/**
 * Subscription topics for R4, as the Subscriptions R5 Backport IG represents them: a Basic resource
 * (code http://hl7.org/fhir/fhir-types#SubscriptionTopic) carrying the R5 SubscriptionTopic
 * elements as cross-version extensions (http://hl7.org/fhir/5.0/StructureDefinition/
 * extension-SubscriptionTopic.*). Supported: url (or artifact-url), resourceTrigger (resource,
 * supportedInteraction, queryCriteria current/resultForCreate/resultForDelete, fhirPathCriteria
 * with %previous and %current), canFilterBy (resource, filterParameter).
 *
 * Decision: queryCriteria.previous is not evaluated (the search index holds current versions
 * only); express transitions with fhirPathCriteria, which sees both versions.
 */
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { Basic, Extension, Resource } from 'fhir/r4.js';
import type { SqlClient } from '../store/db.js';
import { quoteIdent } from '../store/schema.js';
import type { ChangeAction } from './outbox.js';

const X = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.';
const ARTIFACT_URL = 'http://hl7.org/fhir/StructureDefinition/artifact-url';

export interface TopicTrigger {
  resourceType: string;
  interactions: ChangeAction[];
  current?: string;
  resultForCreate?: 'test-passes' | 'test-fails';
  resultForDelete?: 'test-passes' | 'test-fails';
  fhirPath?: string;
}

export interface Topic {
  url: string;
  triggers: TopicTrigger[];
  /** Allowed filter parameters per resource type (none declared = any search parameter of the type). */
  canFilterBy: Map<string, Set<string>>;
}

const ext = (e: { extension?: Extension[] } | undefined, url: string) => (e?.extension ?? []).filter((x) => x.url === url);
const str = (e: Extension | undefined) => e?.valueString ?? e?.valueUri ?? e?.valueCode ?? e?.valueMarkdown ?? e?.valueCanonical;

/** The resource type named by a trigger's `resource` (a type or its StructureDefinition URL). */
function typeOf(uri: string | undefined): string {
  return (uri ?? '').replace(/^.*\//, '');
}

/** A topic from a Basic resource; undefined if the Basic is not a SubscriptionTopic. */
export function parseTopic(basic: Basic): Topic | undefined {
  const isTopic = basic.code?.coding?.some((c) => c.code === 'SubscriptionTopic') || ext(basic, `${X}url`).length > 0;
  if (!isTopic) return undefined;
  const url = str(ext(basic, `${X}url`)[0]) ?? str(ext(basic, ARTIFACT_URL)[0]);
  if (!url) return undefined;
  const triggers: TopicTrigger[] = ext(basic, `${X}resourceTrigger`).map((t) => {
    const q = ext(t, 'queryCriteria')[0];
    const result = (name: string) => str(ext(q, name)[0]) as TopicTrigger['resultForCreate'];
    return {
      resourceType: typeOf(str(ext(t, 'resource')[0])),
      interactions: ext(t, 'supportedInteraction').map((i) => str(i) as ChangeAction),
      current: q ? str(ext(q, 'current')[0]) : undefined,
      resultForCreate: q ? result('resultForCreate') : undefined,
      resultForDelete: q ? result('resultForDelete') : undefined,
      fhirPath: str(ext(t, 'fhirPathCriteria')[0]),
    };
  });
  const canFilterBy = new Map<string, Set<string>>();
  for (const f of ext(basic, `${X}canFilterBy`)) {
    const type = typeOf(str(ext(f, 'resource')[0]));
    const param = str(ext(f, 'filterParameter')[0]);
    if (!param) continue;
    canFilterBy.set(type, (canFilterBy.get(type) ?? new Set()).add(param));
  }
  return { url, triggers, canFilterBy };
}

/** Every topic of the tenant (Basic resources that are SubscriptionTopics), by canonical URL. */
export async function loadTopics(client: SqlClient, schema: string): Promise<Map<string, Topic>> {
  const r = await client.query<{ content: string }>(
    `SELECT content FROM ${quoteIdent(schema)}.resource WHERE resource_type = 'Basic' AND NOT deleted AND content LIKE '%SubscriptionTopic%'`,
  );
  const topics = new Map<string, Topic>();
  for (const row of r.rows) {
    const topic = parseTopic(JSON.parse(row.content) as Basic);
    if (topic) topics.set(topic.url, topic);
  }
  return topics;
}

/** Check a fhirPathCriteria expression compiles (topic write time); returns the error text or undefined. */
export function fhirPathError(expression: string): string | undefined {
  try {
    fhirpath.compile(expression, r4);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Whether a trigger fires for a change, apart from queryCriteria.current (which the matcher
 * evaluates through the search engine). previous/current: the versions before and after.
 */
export function triggerFires(trigger: TopicTrigger, action: ChangeAction, previous: Resource | undefined, current: Resource | undefined): boolean {
  if (trigger.interactions.length > 0 && !trigger.interactions.includes(action)) return false;
  if (action === 'create' && trigger.current === undefined && trigger.resultForCreate === 'test-fails') return false;
  if (action === 'delete' && trigger.current !== undefined && trigger.resultForDelete !== 'test-passes') return false;
  if (trigger.fhirPath) {
    try {
      const result = fhirpath.evaluate(current ?? {}, trigger.fhirPath, { previous: previous ?? {}, current: current ?? {} }, r4) as unknown[];
      if (!(result.length === 1 && result[0] === true)) return false;
    } catch {
      return false; // an expression that fails on this resource does not fire
    }
  }
  return true;
}
