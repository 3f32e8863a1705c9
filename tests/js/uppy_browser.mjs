// Uppy (its browser bundle, @uppy/tus inside) in Debian's chromium, on a page
// of another origin (the business app, served here by node:http on another
// loopback port: Chromium lets only pages of its own address space reach a
// loopback gateway without TLS), uploads
// files to the gateway's tus endpoint with an upload token in the headers, as
// the README tells a business app to; prints one JSON line of what Uppy reported.
// usage: node uppy_browser.mjs '{"endpoint": "http://127.0.0.1:PORT/files/",
//                                "token": "..." | null, "files": ["/path", ...], "chunkSize": N,
//                                "digest": true | absent}'
// with "digest" the page hashes each file (WebCrypto SHA-256) before Uppy
// uploads it and declares it in the creation (Repr-Digest, RFC 9530), as an
// app offering instant upload would; Uppy itself knows nothing of it
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const args = JSON.parse(process.argv[2]);
const require = createRequire(import.meta.url);
const bundle = require.resolve('uppy/dist/uppy.min.js');
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// the business app's page: Uppy core + the tus plugin, the token in the headers
const PAGE = `<!doctype html><meta charset="utf-8"><title>app</title>
<input type="file" id="file" multiple>
<script src="/uppy.min.js"></script>
<script>
  const options = ${JSON.stringify({ endpoint: args.endpoint, chunkSize: args.chunkSize })};
  const token = ${JSON.stringify(args.token)};
  const digest = ${JSON.stringify(Boolean(args.digest))};
  const declared = new Map();  // Uppy file id -> Repr-Digest
  const uppy = new Uppy.Uppy({ autoProceed: false });
  uppy.use(Uppy.Tus, {
    ...options,
    headers: (file) => ({
      ...(token ? { Authorization: 'UpToken ' + token } : {}),
      ...(declared.has(file.id) ? { 'Repr-Digest': declared.get(file.id) } : {}),
    }),
    retryDelays: [0, 300],
    removeFingerprintOnSuccess: true,
  });
  const progress = [];
  uppy.on('upload-progress', (file, p) => progress.push(p.bytesUploaded));
  async function sha256(f) {
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', await f.arrayBuffer()));
    return 'sha-256=:' + btoa(String.fromCharCode(...d)) + ':';
  }
  document.getElementById('file').addEventListener('change', async (event) => {
    for (const f of event.target.files) {
      const id = uppy.addFile({ name: f.name, type: f.type, data: f });
      if (digest) declared.set(id, await sha256(f));
    }
    uppy.upload().then((r) => {
      window.result = {
        successful: r.successful.map((f) => ({ name: f.name, url: f.uploadURL })),
        failed: r.failed.map((f) => ({ name: f.name, error: String(f.error) })),
        progressEvents: progress.length,
      };
    }, (e) => { window.result = { error: String(e) }; });
  });
</script>`;

const app = http.createServer((req, res) => {
  const js = req.url === '/uppy.min.js';
  res.writeHead(200, { 'Content-Type': js ? 'text/javascript' : 'text/html' });
  res.end(js ? fs.readFileSync(bundle) : PAGE);
});
await new Promise((ok) => app.listen(0, '127.0.0.1', ok));
const APP = `http://127.0.0.1:${app.address().port}`;

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ugw-uppy-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', ...FLAGS],
});
const page = context.pages()[0] || (await context.newPage());
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
// the gateway's answers as the browser saw them (CORS preflights aside)
const exchanges = [];
page.on('response', (r) => {
  const method = r.request().method();
  if (r.url().startsWith(args.endpoint) && method !== 'OPTIONS') {
    exchanges.push({ method, status: r.status(), offset: r.headers()['upload-offset'] ?? null });
  }
});
const result = {};
try {
  await page.goto(`${APP}/`);
  await page.setInputFiles('#file', args.files);
  await page.waitForFunction(() => window.result !== undefined, null, { timeout: 120000 });
  Object.assign(result, await page.evaluate(() => window.result), { ok: true });
} catch (e) {
  Object.assign(result, { ok: false, error: String(e) });
} finally {
  result.consoleErrors = consoleErrors;
  result.exchanges = exchanges;
  await context.close();
  app.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
