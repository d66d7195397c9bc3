// Busy polling after a reply: the event loop stays awake for the window, then sleeps again. The
// loop's own utilisation tells the two apart: libuv counts the time it waits in epoll_wait as idle,
// so a sleeping loop is near 0 and a polling one near 1. Unlike the process's CPU time it does not
// count other threads (GC helpers, the compiler) nor depend on what the scheduler gives a loaded
// machine (CI once measured 17 ms of CPU in 150 ms of a loop that was not polling).
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { BusyPoll } from '../../server/reply/busy-poll.ts';

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** The event loop's utilisation (0 asleep … 1 never waiting) while `during` ran. */
async function loopBusy(during: () => Promise<unknown>): Promise<number> {
  const start = performance.eventLoopUtilization();
  await during();
  return performance.eventLoopUtilization(start).utilization;
}

describe('BusyPoll', () => {
  it('keeps the loop turning for the window after a kick, then lets it sleep', async () => {
    const poll = new BusyPoll(250_000);
    const busy = await loopBusy(async () => {
      poll.kick();
      await sleep(150);
    });
    expect(busy).toBeGreaterThan(0.8);
    await sleep(150); // past the 250 ms window
    expect(await loopBusy(() => sleep(150))).toBeLessThan(0.2);
  });

  it('each kick extends the window from that moment', async () => {
    const poll = new BusyPoll(150_000);
    poll.kick();
    await sleep(100);
    poll.kick();
    // 100–200 ms after the first kick: its window has ended, the second one's runs.
    expect(await loopBusy(() => sleep(100))).toBeGreaterThan(0.8);
    await sleep(100);
  });

  it('does nothing with a window of 0', async () => {
    const poll = new BusyPoll(0);
    const idle = await loopBusy(async () => {
      poll.kick();
      await sleep(150);
    });
    expect(idle).toBeLessThan(0.2);
  });
});
