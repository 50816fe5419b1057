/** Waiting in tests for what the server does after answering (change consumers, jobs, MLLP deliveries). */

/**
 * Polls `check` until it returns something truthy and returns that; throws after `timeoutMs`
 * naming `what`, so a test that waits in vain fails instead of hanging.
 */
export async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what = 'a condition', timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
