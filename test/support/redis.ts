/** Redis in tests: each suite's job queues under a key prefix of its own, deleted after the suite. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';

/** Delete every Redis key under the prefix (the queues of one test run). */
export async function removeKeys(prefix: string): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL!);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * Server environment for BullMQ-backed jobs (REDIS_URL, a fresh REDIS_PREFIX) whose keys are
 * deleted after the enclosing describe block; empty when REDIS_URL is not set. Call it inside
 * the describe block, before useTestServer (the keys go once the server has closed).
 */
export function redisEnv(name = 'cbtest'): Record<string, string> {
  if (!process.env.REDIS_URL) return {};
  const prefix = `${name}-${randomBytes(4).toString('hex')}`;
  afterAll(() => removeKeys(prefix));
  return { REDIS_URL: process.env.REDIS_URL, REDIS_PREFIX: prefix };
}
