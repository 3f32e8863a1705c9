// Two partial uploads with tus-js-client, and several finals made of them
// (one listing a partial twice) created while the partials are unfinished
// (concatenation-unfinished). Prints {"partials": [...], "finals": {NAME: URL}}
// once every final reports an offset, i.e. was assembled.
// usage: node tus_multi_final.mjs ENDPOINT FILE_A FILE_B
// tus-js-client has no call for a final of given URLs (it makes its own in
// parallel mode), so the finals are plain POSTs; every byte goes through
// tus-js-client.
import fs from 'node:fs';
import { Upload } from 'tus-js-client';

const [endpoint, fileA, fileB] = process.argv.slice(2);
const TUS = { 'Tus-Resumable': '1.0.0' };
const FINALS = { ab: ['a', 'b'], baa: ['b', 'a', 'a'], a: ['a'] };

function fail(message) {
  console.error(message);
  process.exit(1);
}

const uploads = {};
const finals = {};
let created = null;

// The finals are created once both partials exist, before any PATCH is sent.
function createFinals() {
  if (created) return created;
  if (!uploads.a?.url || !uploads.b?.url) return null;
  created = (async () => {
    for (const [name, order] of Object.entries(FINALS)) {
      const list = order.map((p) => new URL(uploads[p].url).pathname).join(' ');
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Concat': `final;${list}` },
      });
      if (res.status !== 201) fail(`final ${name}: ${res.status} ${await res.text()}`);
      finals[name] = new URL(res.headers.get('location'), endpoint).href;
    }
  })();
  return created;
}

function partial(name, file) {
  return new Promise((resolve) => {
    const data = fs.readFileSync(file);
    const upload = new Upload(data, {
      endpoint,
      headers: { 'Upload-Concat': 'partial' },
      chunkSize: Math.ceil(data.length / 3),
      retryDelays: [100, 500, 1000],
      async onBeforeRequest(req) {
        if (req.getMethod() !== 'PATCH') return;
        while (!createFinals()) await new Promise((r) => setTimeout(r, 20));
        await created;
      },
      onError(error) {
        fail(`partial ${name}: ${error}`);
      },
      onSuccess() {
        resolve();
      },
    });
    uploads[name] = upload;
    upload.start();
  });
}

await Promise.all([partial('a', fileA), partial('b', fileB)]);
await created;
const deadline = Date.now() + 60_000;
for (const [name, url] of Object.entries(finals)) {
  for (;;) {
    const res = await fetch(url, { method: 'HEAD', headers: TUS });
    if (res.status === 200 && res.headers.get('upload-offset') !== null) break;
    if (Date.now() > deadline) fail(`final ${name} never finished: HEAD ${res.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
console.log(JSON.stringify({ partials: [uploads.a.url, uploads.b.url], finals }));
