/**
 * Walking the references of a resource. Both the transaction Bundle (fullUrl and conditional
 * references → Type/id) and HL7 v2 inbound (write order, urn:uuid → Type/id, merges) rewrite
 * references in place; they share this one walk so they agree on what counts as a reference.
 */

/**
 * Visit every Reference.reference string (any depth, including contained resources and
 * extensions), letting fn replace it: a string return value replaces it, undefined keeps it.
 */
export function eachReference(node: unknown, fn: (reference: string) => string | undefined): void {
  if (Array.isArray(node)) {
    for (const item of node) eachReference(item, fn);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    if (key === 'reference' && typeof value === 'string') {
      const replaced = fn(value);
      if (replaced !== undefined) obj.reference = replaced;
    } else if (typeof value === 'object') {
      eachReference(value, fn);
    }
  }
}

/**
 * A deep copy of a JSON value (a resource) with every Reference.reference passed through fn as
 * eachReference does, in one walk. The write paths copy a mapped resource before rewriting its
 * references (a retried transaction must start from the resource as mapped); structuredClone
 * and then eachReference cost several times more for these plain JSON trees.
 */
export function copyWithReferences<T>(node: T, fn?: (reference: string) => string | undefined): T {
  if (Array.isArray(node)) return node.map((item) => copyWithReferences(item, fn)) as T;
  if (node === null || typeof node !== 'object') return node;
  const obj = node as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    if (key === 'reference' && typeof value === 'string') out[key] = (fn && fn(value)) ?? value;
    else out[key] = typeof value === 'object' ? copyWithReferences(value, fn) : value;
  }
  return out as T;
}
