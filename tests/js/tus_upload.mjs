// Upload one file with tus-js-client (Node) and print {"url": ...} as JSON.
// usage: node tus_upload.mjs ENDPOINT FILE '{"parallelUploads":3,...}'
import fs from 'node:fs';
import { Upload } from 'tus-js-client';

const [endpoint, file, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions || '{}');
const data = fs.readFileSync(file);

const upload = new Upload(data, {
  endpoint,
  metadata: { filename: 'js-upload.bin', filetype: 'application/octet-stream' },
  retryDelays: [100, 500, 1000],
  ...options,
  onError(error) {
    console.error(String(error));
    process.exit(1);
  },
  onSuccess() {
    console.log(JSON.stringify({ url: upload.url }));
  },
});
upload.start();
