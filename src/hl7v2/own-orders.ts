/**
 * Order numbers CareBridge assigned itself, found again when a partner answers.
 *
 * An order written without any identifier (a ServiceRequest or MedicationRequest created over
 * REST) goes out with ORC-2 = `<resource id>^<authority of HL7V2_PLACER_SYSTEM>`
 * (outbound/consumer.ts, placerNumber). The lab's ORU^R01 or the pharmacy's RDS^O13 quotes that
 * number, which inbound maps back to `Identifier.system` = HL7V2_PLACER_SYSTEM and value = the id.
 * No stored identifier carries it, so the identifier condition alone would find nothing and create
 * a placeholder order beside the real one. The fallback here: for a number in CareBridge's own
 * namespace, the order whose id is the number. An identifier that matches still wins (an order
 * that carries the number explicitly, e.g. a $apply draft, or a placeholder made earlier).
 */

/** The resource types HL7 v2 outbound sends as orders (with an ORC-2 placer number). */
const ORDER_TYPES: ReadonlySet<string> = new Set(['ServiceRequest', 'MedicationRequest']);
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const unescapeToken = (s: string) => s.replace(/\\(.)/g, '$1');

/** The system|value pairs of an `identifier=a|1,b|2` condition (as mapper.ts identifierQuery writes it). */
export function identifierTokens(query: string): Array<{ system: string; value: string }> {
  if (!query.startsWith('identifier=') || query.includes('&')) return [];
  const list = decodeURIComponent(query.slice('identifier='.length));
  return list.split(/(?<!\\),/).flatMap((token) => {
    const bar = /(?<!\\)\|/.exec(token);
    return bar ? [{ system: unescapeToken(token.slice(0, bar.index)), value: unescapeToken(token.slice(bar.index + 1)) }] : [];
  });
}

/**
 * The `_id=…` condition that also identifies the order of this identifier condition: the values
 * of its identifiers in `ownPlacerSystem` that are valid resource ids. Undefined when there are none.
 */
export function ownOrderCondition(resourceType: string, query: string, ownPlacerSystem: string | undefined): string | undefined {
  if (!ownPlacerSystem || !ORDER_TYPES.has(resourceType)) return undefined;
  const ids = identifierTokens(query)
    .filter((t) => t.system === ownPlacerSystem && FHIR_ID.test(t.value))
    .map((t) => t.value);
  return ids.length > 0 ? `_id=${encodeURIComponent([...new Set(ids)].join(','))}` : undefined;
}

/** The matches of a condition with its fallback: the identifier's when it found any, else the id's. */
export function preferIdentifier<T>(byIdentifier: T[], byId: T[] | undefined): T[] {
  return byIdentifier.length > 0 || !byId ? byIdentifier : byId;
}
