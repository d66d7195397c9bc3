/**
 * Polls `cond` until it holds. Not a timing assertion: the deadline only turns a hang into a
 * failure with a message, and is generous.
 */
export async function waitFor(cond: () => boolean, what: string, deadlineMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
