// One IETF upload creation with Node's own HTTP client (llhttp), printing the
// interim responses it parsed and the final one as JSON — a real HTTP parser's
// view of the gateway's 104 (Upload Resumption Supported).
// usage: node ietf_104.mjs URL FILE INTEROP_VERSION
import fs from 'node:fs';
import http from 'node:http';

const [url, file, version] = process.argv.slice(2);
const data = fs.readFileSync(file);
const interim = [];
const req = http.request(url, {
  method: 'POST',
  headers: {
    'Upload-Draft-Interop-Version': version,
    'Upload-Complete': '?1',
    'Content-Length': data.length,
  },
});
req.on('information', (info) => {
  interim.push({ status: info.statusCode, headers: info.headers });
});
req.on('response', (res) => {
  res.resume();
  res.on('end', () => {
    console.log(JSON.stringify({ interim, status: res.statusCode, headers: res.headers }));
  });
});
req.on('error', (error) => {
  console.error(String(error));
  process.exit(1);
});
req.end(data);
