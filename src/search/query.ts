/**
 * FHIR search: the parsed form of a search and its public entry points. Parsing (query-parse.ts)
 * turns `[name, value]` pairs into a ParsedSearch; SQL building (query-sql.ts) turns that into one
 * parameterised PostgreSQL statement over a tenant schema. AND between parameters (and repeated
 * parameters), OR between comma-separated values of one parameter.
 *
 * Matching rules (search.html), as implemented:
 * - token: `code` (any system), `system|code`, `|code` (no system), `system|`; :not (resources with
 *   no matching token, including those without the element), :text (case- and accent-insensitive
 *   starts-with on Coding.display / CodeableConcept.text / Identifier.type.text), :missing;
 *   :below / :above (subsumption in the core code systems' hierarchies, else exact), :in / :not-in
 *   (core value sets expanded here, else stored ValueSets; :not-in like :not), :of-type
 *   (`type-system|type-code|value` of an Identifier): modifiers.ts, terminology.ts.
 * - string: starts-with on the normalised value (case/accent/whitespace-insensitive); :exact (exact,
 *   case-sensitive), :contains (normalised substring), :missing.
 * - reference: `Type/id[/_history/v]`, `id` (any type), an absolute URL (exact), a canonical with
 *   `|version`; :[Type] (`subject:Patient=1`), :identifier (`system|value` of Reference.identifier),
 *   :missing, :below / :above (URL path hierarchy, as for uri).
 * - date (ranges, see values.ts): eq = target within the search range; ne = not eq; gt = target ends
 *   after the search range; lt = target starts before it; ge = gt or eq; le = lt or eq; sa = target
 *   starts after it; eb = target ends before it; ap = ranges overlap once the search range is widened
 *   by 10% of the time between now and the searched date.
 * - number / quantity (ranges of implied precision): eq = target range within the search range;
 *   ne = not eq; gt/lt/ge/le compare the target value with the search value exactly (`lt100` is
 *   "less than exactly 100"); sa/eb as for dates; ap = overlaps value ± 10%. Quantity
 *   `value|system|code` (system and code), `value||code` (code or unit), `value` (any unit).
 * - uri: exact; :below (equal or under the URL at a '/' boundary); :above (the stored URL is the
 *   search URL or one of its '/'-prefixes); :missing.
 * - _id (exact, :not) and _lastUpdated (date prefixes) use columns of `resource`.
 * - composite (`code-value-quantity=http://loinc.org|8480-6$lt60`): each `$`-separated part as for
 *   its component's type, all matched by the same element (composite.ts); :missing.
 * - chained (`subject:Patient.name=x`, `patient.organization.name=x`) and reverse-chained
 *   (`_has:Observation:patient:code=x`, nested) parameters: chain.ts, links-sql.ts.
 */
export * from './query-types.js';
export { parseSearch } from './query-parse.js';
export { buildSearchSql, buildCountSql } from './query-sql.js';
