'use strict';
// The upload page: files picked or dropped are sent with TusUpload (tus.js),
// one row each with progress, pause/resume and cancel; the file URL when done.



// A token from ?token= / ?jwt= (then dropped from the address bar) or the field.
function credentials() {
  const params = new URLSearchParams(location.search);
  const fromQuery = params.get('token') || params.get('jwt');
  if (fromQuery) {
    sessionStorage.setItem('upload-gateway:token', fromQuery);
    params.delete('token');
    params.delete('jwt');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : ''));
  }
  const field = $('#token');
  field.value = sessionStorage.getItem('upload-gateway:token') || '';
  field.addEventListener('change', () => sessionStorage.setItem('upload-gateway:token', field.value.trim()));
  return () => {
    const value = field.value.trim();
    if (!value) return {};
    // a JWT is three base64url parts; anything else is a Qiniu-style upload token
    const scheme = /^[\w-]+\.[\w-]+\.[\w-]*$/.test(value) ? 'Bearer' : 'UpToken';
    return { Authorization: `${scheme} ${value}` };
  };
}

function button(label, action) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.className = action;
  return b;
}

function showPending() {
  const list = $('#pending-list');
  list.replaceChildren();
  const active = new Set([...document.querySelectorAll('.upload')].map((row) => row.dataset.key));
  const entries = storedUploads().filter((e) => !active.has(e.key));
  for (const entry of entries) {
    const item = document.createElement('li');
    item.className = 'pending';
    item.dataset.name = entry.name;
    item.append(`${entry.name} (${human(entry.size)}) `);
    const forget = button('forget', 'forget');
    forget.addEventListener('click', () => {
      localStorage.removeItem(entry.key);
      showPending();
    });
    item.append(forget);
    list.append(item);
  }
  $('#pending').hidden = entries.length === 0;
}

function row(file) {
  const li = document.createElement('li');
  li.className = 'upload';
  li.dataset.name = file.name;
  li.dataset.state = 'starting';
  li.dataset.percent = '0';
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = file.name;
  const bar = document.createElement('progress');
  bar.max = file.size || 1;
  bar.value = 0;
  const figures = document.createElement('span');
  figures.className = 'figures';
  const note = document.createElement('span');
  note.className = 'note muted';
  const actions = document.createElement('span');
  actions.className = 'actions';
  const result = document.createElement('div');
  result.className = 'result';
  li.append(name, bar, figures, actions, note, result);
  return { li, bar, figures, note, actions, result };
}

function startUpload(file, settings, headers) {
  const view = row(file);
  $('#uploads').prepend(view.li);
  let lastBytes = 0;
  let lastTime = performance.now();
  let rate = 0;
  const setState = (state) => {
    view.li.dataset.state = state;
  };
  const upload = new TusUpload(file, {
    endpoint: settings.endpoint,
    chunkSize: settings.chunkSize,
    headers: headers(),
    metadata: {},
    onProgress(sent, total) {
      const now = performance.now();
      if (now - lastTime >= 500) {
        rate = ((sent - lastBytes) * 1000) / (now - lastTime);
        lastBytes = sent;
        lastTime = now;
      }
      const percent = total ? Math.floor((100 * sent) / total) : 100;
      view.bar.value = sent;
      view.li.dataset.percent = String(percent);
      view.figures.textContent = `${percent}% · ${human(sent)} / ${human(total)}` +
        (rate > 0 ? ` · ${human(rate)}/s` : '');
    },
    onSuccess(fileUrl) {
      setState('done');
      view.bar.value = view.bar.max;
      view.li.dataset.percent = '100';
      view.actions.replaceChildren();
      const link = document.createElement('a');
      link.className = 'file-url';
      link.href = fileUrl;
      link.textContent = fileUrl;
      link.target = '_blank';
      link.rel = 'noopener';
      const copy = button('copy', 'copy');
      copy.addEventListener('click', () => navigator.clipboard && navigator.clipboard.writeText(fileUrl));
      view.result.replaceChildren(link, ' ', copy);
      view.note.textContent = upload.resumedFrom ? `resumed at ${human(upload.resumedFrom)}` : '';
      showPending();
    },
    onError(error) {
      setState('error');
      view.note.textContent = String(error.message || error);
      view.actions.replaceChildren(retry, cancel);
    },
    onNote(text) {
      view.note.textContent = text;
    },
  });
  view.li.dataset.key = upload.storeKey;
  const pause = button('pause', 'pause');
  const resume = button('resume', 'resume');
  const retry = button('retry', 'resume');
  const cancel = button('cancel', 'cancel');
  const run = () => {
    setState('uploading');
    view.note.textContent = '';
    view.actions.replaceChildren(pause, cancel);
    upload.start();
  };
  pause.addEventListener('click', () => {
    upload.pause();
    setState('paused');
    view.actions.replaceChildren(resume, cancel);
  });
  resume.addEventListener('click', run);
  retry.addEventListener('click', run);
  cancel.addEventListener('click', async () => {
    view.actions.replaceChildren();
    try {
      await upload.cancel();
      setState('cancelled');
      view.note.textContent = 'cancelled';
    } catch (error) {
      setState('error');
      view.note.textContent = String(error.message || error);
    }
    showPending();
  });
  // a lost network: continue by itself when the browser is back online
  window.addEventListener('online', () => {
    if (view.li.dataset.state === 'error') run();
  });
  run();
  showPending();
}

async function main() {
  const headers = credentials();
  const answer = await fetch('/ui/config.json');
  const config = await answer.json();
  if (!config.tusPath) {
    $('#status').textContent = 'tus is turned off on this gateway: nothing to upload with here.';
    $('#drop').hidden = true;
    return;
  }
  const settings = { endpoint: new URL(config.tusPath, location.origin).href, chunkSize: config.chunkSize };
  const take = (files) => {
    for (const file of files) {
      if (config.maxSize && file.size > config.maxSize) {
        $('#status').textContent = `${file.name}: larger than this gateway accepts (${human(config.maxSize)})`;
        continue;
      }
      startUpload(file, settings, headers);
    }
  };
  const input = $('#file');
  input.addEventListener('change', () => {
    take([...input.files]);
    input.value = '';
  });
  const drop = $('#drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    take([...e.dataTransfer.files]);
  });
  showPending();
  document.body.dataset.ready = 'yes';
}

main();
