// Upload one file with tus-js-client (Node), declaring its SHA-256 as RFC 9530
// Repr-Digest in the creation request; print {"url": ...} or {"error", "status"},
// with "creations": how many POSTs declared a deferred length / a length.
// usage: node tus_digest.mjs ENDPOINT FILE REPR_DIGEST '{"parallelUploads":3,...}'
import fs from 'node:fs';
import { Upload } from 'tus-js-client';

const [endpoint, file, digest, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions || '{}');
const data = fs.readFileSync(file);
const creations = { deferred: 0, length: 0 };

const upload = new Upload(data, {
  endpoint,
  metadata: { filename: 'digest.bin', filetype: 'application/octet-stream' },
  retryDelays: [],
  ...options,
  onBeforeRequest(req) {
    if (req.getMethod() !== 'POST') return;
    req.setHeader('Repr-Digest', digest);
    if (req.getHeader('Upload-Defer-Length') === '1') creations.deferred += 1;
    if (req.getHeader('Upload-Length') !== undefined) creations.length += 1;
  },
  onError(error) {
    const res = error.originalResponse;
    console.log(JSON.stringify({ error: String(error), status: res ? res.getStatus() : null,
                                 body: res ? res.getBody() : null, url: upload.url, creations }));
  },
  onSuccess() {
    console.log(JSON.stringify({ url: upload.url, creations }));
  },
});
upload.start();
