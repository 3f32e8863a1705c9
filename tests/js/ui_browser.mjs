// Drives Debian's chromium (playwright-core, no browser download) through the
// gateway's pages and prints one JSON line of what it saw.
// usage: node ui_browser.mjs SCENARIO '{"base": "http://127.0.0.1:PORT", ...}'
//   upload: {file, shots}         pick, reload at about half, pick again, wait for the URL
//   cancel: {file}                pick, cancel while it runs
//   token:  {file, token}         open /ui/?token=..., upload, read the file URL
//   offline: {file}               pick, take the network away at about a third, give it back
//   ops:    {token, shots}        wait for an upload row, then for it among the finishes
//   opsPages: {token}             page through the unfinished uploads (older, newer)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [scenario, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs);
const origin = new URL(args.base).origin;
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ugw-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', ...FLAGS],
  viewport: { width: 1100, height: 720 },
});
const requests = [];
context.on('request', (r) => requests.push({ method: r.method(), url: r.url() }));
const page = context.pages()[0] || (await context.newPage());
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
const result = { scenario };

async function percent(name) {
  const v = await page.locator(`.upload[data-name="${name}"]`).first().getAttribute('data-percent');
  return Number(v || 0);
}

try {
  if (scenario === 'upload') {
    const name = path.basename(args.file);
    await page.goto(`${args.base}/`);
    result.landed = page.url();
    await page.waitForSelector('body[data-ready="yes"]');
    await page.setInputFiles('#file', args.file);
    await page.waitForFunction(
      (n) => Number(document.querySelector(`.upload[data-name="${n}"]`)?.dataset.percent) >= 45,
      name, { timeout: 120000, polling: 100 });
    result.percentBeforeReload = await percent(name);
    await page.reload();
    await page.waitForSelector('body[data-ready="yes"]');
    result.pendingAfterReload = await page.locator('#pending-list .pending').allTextContents();
    await page.setInputFiles('#file', args.file);
    await page.waitForSelector(`.upload[data-name="${name}"][data-state="done"]`, { timeout: 120000 });
    result.fileUrl = await page.locator('.upload .file-url').first().getAttribute('href');
    result.note = await page.locator('.upload .note').first().textContent();
    result.storedAfter = await page.evaluate(() => Object.keys(localStorage));
    await page.screenshot({ path: path.join(args.shots, 'upload-page.png') });
  } else if (scenario === 'cancel') {
    const name = path.basename(args.file);
    await page.goto(`${args.base}/ui/`);
    await page.waitForSelector('body[data-ready="yes"]');
    await page.setInputFiles('#file', args.file);
    await page.waitForFunction(
      (n) => Number(document.querySelector(`.upload[data-name="${n}"]`)?.dataset.percent) >= 10,
      name, { timeout: 120000, polling: 100 });
    const uploadUrl = await page.evaluate(() => {
      for (let i = 0; i < localStorage.length; i++) {
        const k = localStorage.key(i);
        if (k.startsWith('upload-gateway:tus:')) return JSON.parse(localStorage.getItem(k)).url;
      }
      return null;
    });
    result.uploadUrl = uploadUrl;
    await page.click(`.upload[data-name="${name}"] button.cancel`);
    await page.waitForSelector(`.upload[data-name="${name}"][data-state="cancelled"]`);
    result.storedAfter = await page.evaluate(() => Object.keys(localStorage));
  } else if (scenario === 'token') {
    const name = path.basename(args.file);
    await page.goto(`${args.base}/ui/?token=${encodeURIComponent(args.token)}`);
    await page.waitForSelector('body[data-ready="yes"]');
    result.addressBar = page.url();
    await page.setInputFiles('#file', args.file);
    await page.waitForSelector(`.upload[data-name="${name}"][data-state="done"]`, { timeout: 120000 });
    result.fileUrl = await page.locator('.upload .file-url').first().getAttribute('href');
  } else if (scenario === 'offline') {
    const name = path.basename(args.file);
    await page.goto(`${args.base}/ui/`);
    await page.waitForSelector('body[data-ready="yes"]');
    await page.setInputFiles('#file', args.file);
    await page.waitForFunction(
      (n) => Number(document.querySelector(`.upload[data-name="${n}"]`)?.dataset.percent) >= 30,
      name, { timeout: 120000, polling: 100 });
    await context.setOffline(true);
    await page.waitForFunction(
      (n) => /retrying|connection/.test(document.querySelector(`.upload[data-name="${n}"] .note`)?.textContent || ''),
      name, { timeout: 60000, polling: 100 });
    result.noteWhileOffline = await page.locator(`.upload[data-name="${name}"] .note`).textContent();
    await page.waitForTimeout(1500);
    await context.setOffline(false);
    await page.waitForSelector(`.upload[data-name="${name}"][data-state="done"]`, { timeout: 120000 });
    result.fileUrl = await page.locator('.upload .file-url').first().getAttribute('href');
  } else if (scenario === 'ops') {
    await page.goto(`${args.base}/ui/ops?token=${encodeURIComponent(args.token)}`);
    result.addressBar = page.url();
    await page.waitForSelector('body[data-loaded="yes"]');
    const row = page.locator('#uploads tbody tr[data-id]').first();
    await row.waitFor({ timeout: 60000 });
    result.id = await row.getAttribute('data-id');
    await page.waitForFunction(
      (id) => /\/s$/.test(document.querySelector(`#uploads tr[data-id="${id}"] td:nth-child(5)`)?.textContent || ''),
      result.id, { timeout: 30000, polling: 200 });
    result.liveRow = await page.locator(`#uploads tr[data-id="${result.id}"]`).textContent();
    await page.screenshot({ path: path.join(args.shots, 'ops-live.png'), fullPage: true });
    await page.locator(`#finished tr[data-id="${result.id}"]`).waitFor({ timeout: 120000 });
    await page.waitForTimeout(1500); // the chart's line after the upload
    result.finishedRow = await page.locator(`#finished tr[data-id="${result.id}"]`).textContent();
    result.finishedUrl = await page.locator(`#finished tr[data-id="${result.id}"] a`).getAttribute('href');
    result.stillInProgress = await page.locator(`#uploads tr[data-id="${result.id}"]`).count();
    result.readiness = await page.locator('#ready .badge').allTextContents();
    result.backends = await page.locator('#backends tbody tr').allTextContents();
    result.chartPoints = (await page.locator('#chart polyline').getAttribute('points')).split(' ').length;
    await page.screenshot({ path: path.join(args.shots, 'ops-page.png'), fullPage: true });
  } else if (scenario === 'opsPages') {
    await page.goto(`${args.base}/ui/ops?token=${encodeURIComponent(args.token)}`);
    await page.waitForSelector('body[data-loaded="yes"]');
    const ids = async () => page.locator('#uploads tbody tr[data-id]').evaluateAll(
      (rows) => rows.map((r) => r.dataset.id));
    const countIs = (text) => page.waitForFunction(
      (t) => document.querySelector('#upload-count').textContent.startsWith(t), text,
      { timeout: 15000, polling: 100 });
    result.pages = [];
    await countIs('(page 1:');
    for (let n = 1; ; n += 1) {
      result.pages.push({ count: await page.locator('#upload-count').textContent(), ids: await ids(),
        newer: await page.locator('#newer').isVisible(), older: await page.locator('#older').isVisible() });
      if (!(await page.locator('#older').isVisible())) break;
      await page.locator('#older').click();
      await countIs(`(page ${n + 1}:`);
    }
    await page.locator('#newer').click();
    await countIs(`(page ${result.pages.length - 1}:`);
    result.backIds = await ids();
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = String(error.stack || error);
  if (args.shots) await page.screenshot({ path: path.join(args.shots, `${scenario}-failure.png`) }).catch(() => {});
}
result.requests = requests;
result.foreign = requests.filter((r) => !r.url.startsWith(origin) && !r.url.startsWith('data:'));
result.consoleErrors = consoleErrors;
await context.close();
fs.rmSync(profile, { recursive: true, force: true });
console.log(JSON.stringify(result));
