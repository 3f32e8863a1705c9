'use strict';
// A small tus 1.0 client for the upload page: creation, HEAD, PATCH in
// chunks with upload progress, retries with backoff, termination. Upload URLs
// are kept in localStorage so that a reloaded page continues where it stopped.

const TUS_VERSION = '1.0.0';
const STORE_PREFIX = 'upload-gateway:tus:';
const RETRY_DELAYS = [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000];

class UploadFailed extends Error {}
class Stopped extends Error {}

function base64Text(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function encodeMetadata(metadata) {
  return Object.entries(metadata)
    .map(([k, v]) => (v === '' ? k : `${k} ${base64Text(v)}`))
    .join(',');
}

function retryable(status) {
  return status === 0 || status === 423 || status === 409 || status >= 500;
}

function storedUploads() {
  const found = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (!key.startsWith(STORE_PREFIX)) continue;
    try {
      found.push({ key, ...JSON.parse(localStorage.getItem(key)) });
    } catch (e) {
      localStorage.removeItem(key);
    }
  }
  return found;
}

class TusUpload {
  // options: endpoint, chunkSize, headers, metadata, onProgress(sent, total),
  // onSuccess(fileUrl), onError(error), onNote(text)
  constructor(file, options) {
    this.file = file;
    this.options = options;
    this.url = null;
    this.offset = 0;
    this.xhr = null;
    this.stopped = false;
    this.resumedFrom = null;
  }

  get storeKey() {
    const f = this.file;
    return STORE_PREFIX + [this.options.endpoint, f.name, f.size, f.type, f.lastModified].join('|');
  }

  async start() {
    this.stopped = false;
    try {
      const fileUrl = await this._run();
      localStorage.removeItem(this.storeKey);
      this.options.onSuccess(fileUrl);
    } catch (error) {
      if (!(error instanceof Stopped)) this.options.onError(error);
    }
  }

  pause() {
    this.stopped = true;
    if (this.xhr) this.xhr.abort();
  }

  async cancel() {
    this.pause();
    localStorage.removeItem(this.storeKey);
    if (this.url) {
      const r = await this._request('DELETE', this.url, {}, null, null, true).catch(() => null);
      if (r && r.status !== 204 && r.status !== 404 && r.status !== 410) {
        throw new UploadFailed(`cancel: HTTP ${r.status}`);
      }
    }
  }

  async _run() {
    const size = this.file.size;
    const saved = JSON.parse(localStorage.getItem(this.storeKey) || 'null');
    if (!this.url && saved) this.url = saved.url;
    let headers = null;
    if (this.url) {
      const r = await this._retry(() => this._request('HEAD', this.url));
      if (r.status === 404 || r.status === 410) {
        localStorage.removeItem(this.storeKey);
        this.options.onNote(`the server no longer has this upload (HTTP ${r.status}); starting again`);
        this.url = null;
      } else if (r.status !== 200 && r.status !== 204) {
        throw this._failure('HEAD', r);
      } else {
        this.offset = Number(r.getResponseHeader('Upload-Offset'));
        if (this.resumedFrom === null) this.resumedFrom = this.offset;
        headers = r;
      }
    }
    if (!this.url) {
      const metadata = { filename: this.file.name, filetype: this.file.type, ...this.options.metadata };
      const r = await this._retry(() =>
        this._request('POST', this.options.endpoint, {
          'Upload-Length': String(size),
          'Upload-Metadata': encodeMetadata(metadata),
        }),
      );
      if (r.status !== 201 || !r.getResponseHeader('Location')) throw this._failure('create', r);
      this.url = new URL(r.getResponseHeader('Location'), this.options.endpoint).href;
      this.offset = 0;
      headers = r;
      localStorage.setItem(
        this.storeKey,
        JSON.stringify({ url: this.url, name: this.file.name, size, saved: Date.now() }),
      );
    }
    this.options.onProgress(this.offset, size);
    let failures = 0;
    while (this.offset < size) {
      const start = this.offset;
      const end = Math.min(size, start + this.options.chunkSize);
      let r;
      try {
        r = await this._request(
          'PATCH',
          this.url,
          { 'Upload-Offset': String(start), 'Content-Type': 'application/offset+octet-stream' },
          this.file.slice(start, end),
          (sent) => this.options.onProgress(start + sent, size),
        );
      } catch (error) {
        if (error instanceof Stopped) throw error;
        r = null;
      }
      if (r && r.status === 204) {
        this.offset = Number(r.getResponseHeader('Upload-Offset'));
        headers = r;
        failures = 0;
        this.options.onProgress(this.offset, size);
        continue;
      }
      if (r && (r.status === 404 || r.status === 410)) {
        localStorage.removeItem(this.storeKey);
        throw new UploadFailed(`the server no longer has this upload (HTTP ${r.status})`);
      }
      if (r && !retryable(r.status)) throw this._failure('PATCH', r);
      if (failures >= RETRY_DELAYS.length) throw this._failure('PATCH', r);
      this.options.onNote(`${r ? 'HTTP ' + r.status : 'connection lost'}; retrying`);
      await this._sleep(RETRY_DELAYS[failures++]);
      const h = await this._retry(() => this._request('HEAD', this.url));
      if (h.status !== 200 && h.status !== 204) throw this._failure('HEAD', h);
      this.offset = Number(h.getResponseHeader('Upload-Offset'));
      this.options.onProgress(this.offset, size);
    }
    let fileUrl = headers && headers.getResponseHeader('X-Object-Url');
    if (!fileUrl) {
      const h = await this._retry(() => this._request('HEAD', this.url));
      fileUrl = h.getResponseHeader('X-Object-Url');
    }
    return fileUrl || this.url;
  }

  _failure(what, r) {
    if (!r) return new UploadFailed(`${what}: no answer`);
    const reason = (r.responseText || '').split('\n')[0].slice(0, 200);
    return new UploadFailed(`${what}: HTTP ${r.status}${reason ? ' — ' + reason : ''}`);
  }

  _sleep(ms) {
    return new Promise((resolve, reject) => {
      const timer = setInterval(() => {
        if (this.stopped) {
          clearInterval(timer);
          reject(new Stopped());
        }
      }, 100);
      setTimeout(() => {
        clearInterval(timer);
        if (this.stopped) reject(new Stopped());
        else resolve();
      }, ms);
    });
  }

  // answers (any status) are returned; connection failures are retried with backoff
  async _retry(send) {
    for (let attempt = 0; ; attempt++) {
      let r = null;
      try {
        r = await send();
      } catch (error) {
        if (error instanceof Stopped) throw error;
      }
      if (r && !(r.status >= 500 || r.status === 423)) return r;
      if (attempt >= RETRY_DELAYS.length) {
        throw r ? this._failure('request', r) : new UploadFailed('the server does not answer');
      }
      this.options.onNote(`${r ? 'HTTP ' + r.status : 'no connection'}; retrying`);
      await this._sleep(RETRY_DELAYS[attempt]);
    }
  }

  // `always`: sent even after pause() (the DELETE of a cancel)
  _request(method, url, headers = {}, body = null, onSent = null, always = false) {
    if (this.stopped && !always) return Promise.reject(new Stopped());
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open(method, url);
      xhr.setRequestHeader('Tus-Resumable', TUS_VERSION);
      for (const [k, v] of Object.entries({ ...this.options.headers, ...headers })) {
        xhr.setRequestHeader(k, v);
      }
      if (onSent) xhr.upload.onprogress = (e) => onSent(e.loaded);
      xhr.onload = () => resolve(xhr);
      xhr.onerror = () => reject(new UploadFailed('connection failed'));
      xhr.onabort = () => reject(new Stopped());
      xhr.send(body);
    });
  }
}
