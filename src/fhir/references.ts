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
  if (node === null || typeof node !== 'object') return node;
  return (Array.isArray(node) ? copyArray(node, fn) : copyObject(node as Record<string, unknown>, fn)) as T;
}

// The walk's two halves, with primitives handled inline: most values of a resource are strings,
// and a call (or an array.map closure) per value is what the copy mostly cost.
function copyArray(list: unknown[], fn: ((reference: string) => string | undefined) | undefined): unknown[] {
  const out = new Array<unknown>(list.length);
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    if (item === undefined && !(i in list)) continue; // a hole stays a hole, as with list.map
    out[i] = item === null || typeof item !== 'object' ? item : Array.isArray(item) ? copyArray(item, fn) : copyObject(item as Record<string, unknown>, fn);
  }
  return out;
}

function copyObject(obj: Record<string, unknown>, fn: ((reference: string) => string | undefined) | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const keys = Object.keys(obj);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const value = obj[key];
    if (value === null || typeof value !== 'object') out[key] = key === 'reference' && typeof value === 'string' ? ((fn && fn(value)) ?? value) : value;
    else out[key] = Array.isArray(value) ? copyArray(value, fn) : copyObject(value as Record<string, unknown>, fn);
  }
  return out;
}
