'use strict';
// The ops view: polls /ui/ops/snapshot each second with the ops token and
// draws the tables and a plain SVG throughput chart.

const SVG = 'http://www.w3.org/2000/svg';
// the page of unfinished uploads shown: the cursors of the pages before it
// (null: the newest), and the snapshot's cursor of the next, older page
const pages = { trail: [], after: null, next: null };


function duration(seconds) {
  if (seconds === null || seconds === undefined) return '';
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

function cell(content) {
  const td = document.createElement('td');
  if (content instanceof Node) td.append(content);
  else td.textContent = content === null || content === undefined ? '' : String(content);
  return td;
}

function fill(table, rows, columns, emptyText) {
  const body = table.querySelector('tbody');
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement('tr');
    const td = cell(emptyText);
    td.colSpan = columns;
    td.className = 'empty';
    tr.append(td);
    body.append(tr);
  }
  for (const cells of rows) {
    const tr = document.createElement('tr');
    tr.append(...cells.map(cell));
    body.append(tr);
  }
  return body;
}

function progress(bytes, size) {
  const span = document.createElement('span');
  if (size) {
    const bar = document.createElement('progress');
    bar.max = size;
    bar.value = bytes;
    span.append(bar, ' ');
  }
  span.append(`${human(bytes)} / ${size ? human(size) : '?'}`);
  return span;
}

function link(url, text) {
  if (!url) return text;
  const a = document.createElement('a');
  a.href = url;
  a.textContent = text;
  a.target = '_blank';
  a.rel = 'noopener';
  return a;
}

function drawChart(points) {
  const svg = $('#chart');
  svg.replaceChildren();
  const width = 600;
  const height = 160;
  const now = Date.now() / 1000;
  const max = Math.max(1, ...points.map((p) => p[1]));
  const x = (t) => width - ((now - t) / 300) * width;
  const y = (v) => height - 14 - (v / max) * (height - 30);
  for (const frac of [0, 0.5, 1]) {
    const line = document.createElementNS(SVG, 'line');
    line.setAttribute('x1', '0');
    line.setAttribute('x2', String(width));
    line.setAttribute('y1', String(y(max * frac)));
    line.setAttribute('y2', String(y(max * frac)));
    line.setAttribute('stroke', '#e3e7ec');
    svg.append(line);
  }
  const path = document.createElementNS(SVG, 'polyline');
  path.setAttribute('points', points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' '));
  path.setAttribute('fill', 'none');
  path.setAttribute('stroke', '#2f6fde');
  path.setAttribute('stroke-width', '2');
  path.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(path);
  const latest = points.length ? points[points.length - 1][1] : 0;
  $('#chart-label').textContent = `now ${human(latest)}/s · peak ${human(max)}/s`;
}

function render(data) {
  $('#instance').textContent = `instance ${data.instance}`;
  $('#updated').textContent = `updated ${new Date(data.now * 1000).toLocaleTimeString()}`;
  const badges = $('#ready');
  badges.replaceChildren();
  for (const [name, check] of Object.entries(data.ready.checks || {})) {
    const ok = typeof check === 'string' ? check === 'ok' : check.status === 'ok';
    const badge = document.createElement('span');
    badge.className = ok ? 'badge' : 'badge bad';
    const latency = typeof check === 'object' && check.latency_ms !== undefined ? ` ${check.latency_ms} ms` : '';
    const error = ok ? '' : ` — ${typeof check === 'string' ? check : check.error}`;
    badge.textContent = `${name}: ${ok ? 'ok' : 'down'}${latency}${error}`;
    badge.dataset.dependency = name;
    badges.append(badge);
  }
  drawChart(data.throughput);
  const n = data.throughput_instances.length;
  $('#chart-title').textContent = n > 1
    ? `Received by ${n} instances, bytes per second (5-second steps, last 5 minutes)`
    : 'Received on this instance, bytes per second (last 5 minutes)';
  pages.next = data.page.next;
  const first = pages.after === null;
  $('#upload-count').textContent = first && !pages.next
    ? `(${data.uploads.length})`
    : `(page ${pages.trail.length + 1}: ${data.page.records} records, most recent first`
      + `${pages.next ? '; older ones on the next page' : ''})`;
  $('#newer').hidden = first;
  $('#older').hidden = !pages.next;
  const uploads = fill($('#uploads'), data.uploads.map((u) => [
    u.protocol + (u.kind === 'part' ? ' (part)' : u.kind === 'session' ? ` (${u.parts} parts)` : ''),
    u.bucket,
    u.key || u.id,
    progress(u.bytes, u.size),
    u.rate === null ? '' : `${human(u.rate)}/s`,
    duration(u.age),
    u.receiving ? 'receiving' : duration(u.idle),
    u.instance || '?',
  ]), 8, 'none');
  [...uploads.querySelectorAll('tr')].forEach((tr, i) => {
    if (data.uploads[i]) tr.dataset.id = data.uploads[i].id;
  });
  const finished = fill($('#finished'), data.finished.map((f) => [
    f.protocol,
    f.bucket,
    link(f.url, f.key),
    human(f.size),
    duration(f.took),
    `${duration(data.now - f.finished_at)} ago`,
    f.instance,
  ]), 7, 'none yet');
  [...finished.querySelectorAll('tr')].forEach((tr, i) => {
    if (data.finished[i]) tr.dataset.id = data.finished[i].id;
  });
  const backends = data.backends.backends;
  fill($('#backends'), Object.entries(backends).map(([name, s]) => data.backends.available
    ? [name, s.requests, s.mean_ms === null ? '' : `${s.mean_ms} ms`, s.errors]
    : [name, 'metrics off', '', '']), 4, 'none');
}

async function poll(token) {
  try {
    const query = pages.after === null ? '' : `?after=${encodeURIComponent(pages.after)}`;
    const answer = await fetch(`/ui/ops/snapshot${query}`, { headers: { Authorization: `Bearer ${token}` } });
    if (answer.status === 401) {
      sessionStorage.removeItem('upload-gateway:ops-token');
      $('#problem').textContent = 'the ops token was refused';
      $('#token-form').hidden = false;
      return;
    }
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    render(await answer.json());
    $('#problem').textContent = '';
    document.body.dataset.loaded = 'yes';
  } catch (error) {
    $('#problem').textContent = `cannot reach the gateway: ${error.message}; retrying`;
  }
  setTimeout(() => poll(token), 1000);
}

function main() {
  $('#older').addEventListener('click', () => {
    if (!pages.next) return;
    pages.trail.push(pages.after);
    pages.after = pages.next;
  });
  $('#newer').addEventListener('click', () => {
    pages.after = pages.trail.length ? pages.trail.pop() : null;
  });
  const params = new URLSearchParams(location.search);
  if (params.get('token')) {
    sessionStorage.setItem('upload-gateway:ops-token', params.get('token'));
    history.replaceState(null, '', location.pathname);
  }
  const token = sessionStorage.getItem('upload-gateway:ops-token');
  if (token) {
    poll(token);
    return;
  }
  const form = $('#token-form');
  form.hidden = false;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('#ops-token').value.trim();
    if (!value) return;
    sessionStorage.setItem('upload-gateway:ops-token', value);
    form.hidden = true;
    poll(value);
  });
}

main();
