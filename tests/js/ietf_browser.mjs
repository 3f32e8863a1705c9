// tus-js-client's browser build in Debian's chromium (playwright-core, no
// browser download) uploading over the IETF protocol; prints one JSON line.
// usage: node ietf_browser.mjs '{"base": "http://127.0.0.1:PORT", "size": 3000000,
//          "uploads": [{"protocol": "ietf-draft-05", "options": {...}}, ...]}'
// prints {"ok": true, "uploads": [{"url", "sha256"}, ...]} (one browser, uploads in turn)
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import { chromium } from 'playwright-core';

const args = JSON.parse(process.argv[2]);
const here = path.dirname(fileURLToPath(import.meta.url));
const bundle = path.join(here, 'node_modules', 'tus-js-client', 'dist', 'tus.min.js');
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ugw-ietf-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const result = {};
try {
  const page = context.pages()[0] || (await context.newPage());
  await page.goto(`${args.base}/healthz`); // same origin as the upload path
  await page.addScriptTag({ path: bundle });
  result.uploads = [];
  for (const one of args.uploads) {
    result.uploads.push(await page.evaluate(async (a) => {
      const bytes = new Uint8Array(a.size);
      for (let i = 0; i < bytes.length; i += 65536) {
        crypto.getRandomValues(bytes.subarray(i, Math.min(i + 65536, bytes.length)));
      }
      const digest = await crypto.subtle.digest('SHA-256', bytes);
      const sha256 = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
      const file = new Blob([bytes], { type: 'application/octet-stream' });
      const url = await new Promise((resolve, reject) => {
        const upload = new window.tus.Upload(file, {
          endpoint: `${a.base}/files/`,
          protocol: a.protocol,
          retryDelays: [100, 500],
          metadata: { filename: 'browser.bin', filetype: 'application/octet-stream' },
          ...a.options,
          onError: reject,
          onSuccess: () => resolve(upload.url),
        });
        upload.start();
      });
      return { url, sha256 };
    }, { base: args.base, size: args.size, ...one }));
  }
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = String(error);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
