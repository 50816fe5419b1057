/**
 * How an element of the R4 element model shows up in FHIR JSON: which keys it occupies, whether a
 * primitive gets an `_x` companion, and where its children are described. Shared by the schema
 * cleanup (schema-cleanup.ts) and the structural walk (structure-walk.ts) so both agree on the
 * JSON shape of every element.
 */
import { capitalise, type ChildElement } from './element-model.js';
import { childElements, typeKind } from './definitions.js';

/** JSON keys an element occupies, with the type each carries. */
export function elementKeys(el: ChildElement): { key: string; type: string }[] {
  if (el.choice) return el.types.map((t) => ({ key: el.name + capitalise(t), type: t }));
  return [{ key: el.name, type: el.types[0] ?? 'BackboneElement' }];
}

/** Primitive elements that cannot carry `_x` extensions: Element.id, Extension.url, Resource.id. */
export function hasUnderscore(el: ChildElement, type: string): boolean {
  if (typeKind(type) !== 'primitive-type' || type === 'xhtml') return false;
  if (el.name === 'id' || el.path === 'Extension.url') return false;
  return true;
}

/** Where the children of an element are described: a backbone path, a contentReference, or its type. */
export function childNode(el: ChildElement, type: string): string {
  if (el.contentReference) return el.contentReference;
  if ((type === 'BackboneElement' || type === 'Element') && childElements(el.path)) return el.path;
  return type;
}
