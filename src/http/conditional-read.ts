/** Conditional read (http.html#cread): If-None-Match and If-Modified-Since give 304. */
import type { Request } from 'express';
import type { InteractionResult } from '../interactions/context.js';
import { parseVersionTag } from '../interactions/context.js';

export function notModified(req: Request, result: InteractionResult): boolean {
  const v = result.version;
  if (!v || result.status !== 200) return false;
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) {
    // If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    return inm.split(',').some((tag) => tag.trim() === '*' || parseVersionTag(tag) === v.versionId);
  }
  const ims = req.headers['if-modified-since'];
  if (ims !== undefined) {
    const since = Date.parse(ims);
    // HTTP dates have whole seconds: compare at that precision.
    return !Number.isNaN(since) && Math.floor(Date.parse(v.lastUpdated) / 1000) * 1000 <= since;
  }
  return false;
}
