// The dashboard's fault controls on a server reachable beyond loopback, in headless Chromium: opened
// with the address printed at start (`?token=`) they work; opened without it they are refused and
// nothing changes.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServer, type ServerProcess } from '../support/server-process.ts';

let browser: Browser;
let server: ServerProcess;
let varDir: string;

beforeAll(async () => {
  varDir = await mkdtemp(path.join(os.tmpdir(), 'pagelife-dash-token-'));
  server = await startServer(['--var-dir', varDir, '--host', '127.0.0.1', '--http-host', '0.0.0.0']);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await rm(varDir, { recursive: true, force: true });
});

const loss = async (): Promise<number> => ((await (await fetch(`http://127.0.0.1:${server.ports.http}/api/faults`)).json()) as { loss: number }).loss;

async function setLossWithForm(page: Page, value: number): Promise<void> {
  await page.locator('#fault-form input[name="loss"]').fill(String(value));
  await page.locator('#fault-form button').click();
}

it('controls work when the page was opened with the printed token, and are refused without it', async () => {
  const printed = /(http:\/\/\S+\?token=([0-9a-f]+))/.exec(server.output());
  expect(printed).not.toBeNull();
  const token = printed![2]!;
  const page = await browser.newPage();
  try {
    await page.goto(`http://127.0.0.1:${server.ports.http}/`);
    await setLossWithForm(page, 0.5);
    await expect.poll(() => page.locator('#fault-message').textContent(), { timeout: 20_000 }).toContain('control token');
    expect(await loss()).toBe(0);

    await page.goto(`http://127.0.0.1:${server.ports.http}/?token=${token}`);
    await setLossWithForm(page, 0.02);
    await expect.poll(loss, { timeout: 20_000 }).toBe(0.02);
  } finally {
    await page.close();
  }
});
