/**
 * Bundles assembled as JSON text, so that stored resources are embedded without being parsed and
 * re-serialised (reads, searches and history stay cheap however large the page).
 */
import type { Resource } from 'fhir/r4.js';

export interface BundleEntryText {
  fullUrl?: string;
  /** Stored JSON text or a resource object. */
  resource?: string | Resource;
  search?: { mode: 'match' | 'include' | 'outcome'; score?: number };
  request?: { method: string; url: string };
  response?: { status: string; location?: string; etag?: string; lastModified?: string; outcome?: Resource };
}

export interface BundleText {
  type: 'searchset' | 'history' | 'batch-response' | 'transaction-response';
  total?: number;
  links?: { relation: string; url: string }[];
  entries: BundleEntryText[];
  id?: string;
  timestamp?: string;
}

function entryText(e: BundleEntryText): string {
  const parts: string[] = [];
  if (e.fullUrl !== undefined) parts.push(`"fullUrl":${JSON.stringify(e.fullUrl)}`);
  if (e.resource !== undefined) parts.push(`"resource":${typeof e.resource === 'string' ? e.resource : JSON.stringify(e.resource)}`);
  if (e.search) parts.push(`"search":${JSON.stringify(e.search)}`);
  if (e.request) parts.push(`"request":${JSON.stringify(e.request)}`);
  if (e.response) parts.push(`"response":${JSON.stringify(e.response)}`);
  return `{${parts.join(',')}}`;
}

export function bundleText(b: BundleText): string {
  const head: Record<string, unknown> = { resourceType: 'Bundle' };
  if (b.id) head.id = b.id;
  head.meta = { lastUpdated: new Date().toISOString() };
  head.type = b.type;
  if (b.timestamp) head.timestamp = b.timestamp;
  if (b.total !== undefined) head.total = b.total;
  if (b.links?.length) head.link = b.links;
  const headText = JSON.stringify(head);
  const entries = b.entries.length ? `,"entry":[${b.entries.map(entryText).join(',')}]` : '';
  return `${headText.slice(0, -1)}${entries}}`;
}
