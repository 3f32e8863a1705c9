// Upload one file with tus-js-client (Node), declaring its SHA-256 as RFC 9530
// Repr-Digest in the creation request; print {"url": ...} or {"error", "status"}.
// usage: node tus_digest.mjs ENDPOINT FILE REPR_DIGEST '{"parallelUploads":3,...}'
import fs from 'node:fs';
import { Upload } from 'tus-js-client';

const [endpoint, file, digest, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions || '{}');
const data = fs.readFileSync(file);

const upload = new Upload(data, {
  endpoint,
  metadata: { filename: 'digest.bin', filetype: 'application/octet-stream' },
  retryDelays: [],
  ...options,
  onBeforeRequest(req) {
    if (req.getMethod() === 'POST') req.setHeader('Repr-Digest', digest);
  },
  onError(error) {
    const res = error.originalResponse;
    console.log(JSON.stringify({ error: String(error), status: res ? res.getStatus() : null,
                                 body: res ? res.getBody() : null, url: upload.url }));
  },
  onSuccess() {
    console.log(JSON.stringify({ url: upload.url }));
  },
});
upload.start();
