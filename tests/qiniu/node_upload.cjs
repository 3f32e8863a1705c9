// Upload one file with the official Node `qiniu` SDK (tests/js/node_modules).
// usage: node node_upload.cjs <host:port> <form|v1|v2> <token> <key> <file> [partSize]
// prints {"status": <http status>, "data": <answer>, "reqid": <X-Reqid>}
'use strict';
const qiniu = require('qiniu');

const [host, mode, token, key, file, partSize] = process.argv.slice(2);
const config = new qiniu.conf.Config();
config.useHttpsDomain = false;
config.regionsProvider = new qiniu.httpc.Region({
    services: { up: [new qiniu.httpc.Endpoint(host, { defaultScheme: 'http' })] }
});

function upload () {
    if (mode === 'form') {
        const extra = new qiniu.form_up.PutExtra();
        extra.params = { 'x:from': 'node' };
        return new qiniu.form_up.FormUploader(config).putFile(token, key, file, extra);
    }
    const extra = new qiniu.resume_up.PutExtra();
    extra.version = mode;
    if (partSize) extra.partSize = Number(partSize);
    extra.params = { 'x:from': 'node' };
    return new qiniu.resume_up.ResumeUploader(config).putFile(token, key, file, extra);
}

upload().then(({ data, resp }) => {
    const headers = resp.headers || {};
    process.stdout.write(JSON.stringify({
        status: resp.statusCode, data, reqid: headers['x-reqid'] || null
    }));
}).catch(err => {
    process.stdout.write(JSON.stringify({ status: -1, data: String(err && err.stack || err) }));
});
