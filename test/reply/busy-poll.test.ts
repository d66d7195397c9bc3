// Busy polling after a reply: the event loop stays awake for the window, then sleeps again. The
// process's CPU time tells the two apart: a loop blocked in epoll_wait uses none, a polling loop
// uses what the scheduler gives it (bounds far from both, so a loaded machine does not decide).
import { describe, expect, it } from 'vitest';
import { BusyPoll } from '../../server/reply/busy-poll.ts';

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** CPU ms the process used while `during` ran. */
async function cpuMs(during: () => Promise<unknown>): Promise<number> {
  const start = process.cpuUsage();
  await during();
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

describe('BusyPoll', () => {
  it('keeps the loop turning for the window after a kick, then lets it sleep', async () => {
    const poll = new BusyPoll(250_000);
    const busy = await cpuMs(async () => {
      poll.kick();
      await sleep(150);
    });
    expect(busy).toBeGreaterThan(30);
    await sleep(150); // past the 250 ms window
    expect(await cpuMs(() => sleep(150))).toBeLessThan(15);
  });

  it('each kick extends the window from that moment', async () => {
    const poll = new BusyPoll(150_000);
    poll.kick();
    await sleep(100);
    poll.kick();
    // 100–200 ms after the first kick: its window has ended, the second one's runs.
    expect(await cpuMs(() => sleep(100))).toBeGreaterThan(20);
    await sleep(100);
  });

  it('does nothing with a window of 0', async () => {
    const poll = new BusyPoll(0);
    const idle = await cpuMs(async () => {
      poll.kick();
      await sleep(150);
    });
    expect(idle).toBeLessThan(15);
  });
});
