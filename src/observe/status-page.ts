/**
 * The status page served on the admin listener: plain HTML, CSS and a small script
 * (no framework, no CDN, works offline), kept here as strings so that they ship in
 * dist/ with the code. The script polls /api/status every 2 s and draws live
 * counters, the recent verdicts and an SVG chart of messages per minute by verdict.
 */

export const STATUS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mailmoat status</title>
<link rel="stylesheet" href="/status.css">
<script src="/status.js" defer></script>
</head>
<body>
<header><h1>mailmoat</h1><span id="uptime">connecting…</span></header>
<section class="cards">
  <div class="card"><h2>Sessions</h2><p><b id="sessions-smtp">0</b> SMTP · <b id="sessions-pop3">0</b> POP3</p></div>
  <div class="card"><h2>Messages</h2><ul id="verdicts" class="counts"></ul></div>
  <div class="card"><h2>Findings</h2><ul id="findings" class="counts"><li class="none">none yet</li></ul></div>
  <div class="card"><h2>TLS and limits</h2><ul id="tls" class="counts"><li class="none">none yet</li></ul></div>
</section>
<section class="chart-box">
  <h2>Messages per minute, last hour</h2>
  <svg id="chart" viewBox="0 0 720 200" role="img" aria-label="messages per minute by verdict"></svg>
  <p id="legend"></p>
</section>
<section>
  <h2>Recent verdicts</h2>
  <table><thead><tr><th>time</th><th>protocol</th><th>verdict</th><th>size</th><th>reason</th><th>quarantine</th></tr></thead>
  <tbody id="recent"><tr><td colspan="6" class="none">none yet</td></tr></tbody></table>
</section>
</body>
</html>
`;

export const STATUS_CSS = `:root { --pass: #2e7d32; --rewrite: #ef6c00; --tempfail: #f9a825; --reject: #c62828; --refused: #6a1b9a; --aborted: #607d8b; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2433; background: #f4f6fa; }
header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: #1d2433; color: #fff; }
header h1 { margin: 0; font-size: 20px; letter-spacing: 0.5px; }
header span { color: #b8c2d6; }
section { margin: 18px 24px; }
h2 { margin: 0 0 8px; font-size: 13px; text-transform: uppercase; letter-spacing: 0.6px; color: #5b6475; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 14px; }
.card, .chart-box, table { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(20, 30, 50, 0.12); }
.card { padding: 14px 16px; }
.card p { margin: 0; font-size: 16px; }
.counts { list-style: none; margin: 0; padding: 0; }
.counts li { display: flex; justify-content: space-between; padding: 2px 0; }
.counts b { font-variant-numeric: tabular-nums; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
.chart-box { padding: 14px 16px; }
svg { width: 100%; height: 220px; }
#legend span { margin-right: 14px; }
table { width: 100%; border-collapse: collapse; overflow: hidden; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e8ebf2; }
th { background: #eef1f7; font-weight: 600; font-size: 12px; color: #5b6475; }
td { font-variant-numeric: tabular-nums; }
.none { color: #8a93a5; }
.verdict { font-weight: 600; }
`;

export const STATUS_JS = `'use strict';
const VERDICTS = ['pass', 'rewrite', 'tempfail', 'reject', 'refused', 'aborted'];
const color = (verdict) => getComputedStyle(document.documentElement).getPropertyValue('--' + verdict).trim();
const el = (tag, attributes, text) => {
  const node = tag.startsWith('svg:') ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
};
const list = (id, entries) => {
  const target = document.getElementById(id);
  target.replaceChildren();
  if (entries.length === 0) { target.append(el('li', { class: 'none' }, 'none yet')); return; }
  for (const [name, count, dot] of entries) {
    const item = el('li');
    const label = el('span');
    if (dot) label.append(el('span', { class: 'dot', style: 'background:' + color(name) }));
    label.append(name);
    item.append(label, el('b', {}, String(count)));
    target.append(item);
  }
};
const size = (bytes) => bytes < 1024 ? bytes + ' B' : bytes < 1048576 ? (bytes / 1024).toFixed(1) + ' KB' : (bytes / 1048576).toFixed(1) + ' MB';
function chart(perMinute) {
  const svg = document.getElementById('chart');
  svg.replaceChildren();
  const width = 720, height = 200, left = 34, bottom = 18, top = 8;
  const totals = perMinute.map((entry) => VERDICTS.reduce((sum, verdict) => sum + entry.counts[verdict], 0));
  const max = Math.max(1, ...totals);
  const step = (width - left) / perMinute.length;
  for (const fraction of [0, 0.5, 1]) {
    const y = top + (height - top - bottom) * (1 - fraction);
    svg.append(el('svg:line', { x1: left, x2: width, y1: y, y2: y, stroke: '#e1e5ee' }));
    svg.append(el('svg:text', { x: left - 6, y: y + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#8a93a5' }, String(Math.round(max * fraction))));
  }
  perMinute.forEach((entry, index) => {
    let y = height - bottom;
    for (const verdict of VERDICTS) {
      const count = entry.counts[verdict];
      if (count === 0) continue;
      const barHeight = (height - top - bottom) * count / max;
      y -= barHeight;
      const rect = el('svg:rect', { x: left + index * step + 1, y, width: Math.max(1, step - 2), height: barHeight, fill: color(verdict) });
      rect.append(el('svg:title', {}, entry.minute.slice(11, 16) + ' ' + verdict + ': ' + count));
      svg.append(rect);
    }
  });
  for (const index of [0, 15, 30, 45, perMinute.length - 1]) {
    const entry = perMinute[index];
    if (entry) svg.append(el('svg:text', { x: left + index * step + step / 2, y: height - 4, 'text-anchor': 'middle', 'font-size': 10, fill: '#8a93a5' }, entry.minute.slice(11, 16)));
  }
  const legend = document.getElementById('legend');
  legend.replaceChildren(...VERDICTS.map((verdict) => { const item = el('span'); item.append(el('span', { class: 'dot', style: 'background:' + color(verdict) }), verdict); return item; }));
}
async function refresh() {
  try {
    const response = await fetch('/api/status', { cache: 'no-store' });
    const status = await response.json();
    document.getElementById('uptime').textContent = 'up since ' + status.startedAt.replace('T', ' ').slice(0, 19) + ' UTC · ' + size(status.bytes) + ' inspected';
    document.getElementById('sessions-smtp').textContent = String(status.sessions.smtp);
    document.getElementById('sessions-pop3').textContent = String(status.sessions.pop3);
    list('verdicts', VERDICTS.map((verdict) => [verdict, status.verdicts[verdict], true]));
    list('findings', Object.entries(status.findings).sort((a, b) => b[1] - a[1]));
    list('tls', [...Object.entries(status.tls).map(([mode, count]) => ['TLS ' + mode, count]), ...Object.entries(status.limits).map(([limit, count]) => [limit, count])]);
    chart(status.perMinute);
    const body = document.getElementById('recent');
    body.replaceChildren();
    if (status.recent.length === 0) { const row = el('tr'); row.append(el('td', { colspan: 6, class: 'none' }, 'none yet')); body.append(row); }
    for (const entry of status.recent) {
      const row = el('tr');
      row.append(el('td', {}, entry.time.slice(11, 19)), el('td', {}, entry.protocol.toUpperCase()), el('td', { class: 'verdict', style: 'color:' + color(entry.verdict) }, entry.verdict), el('td', {}, size(entry.size)), el('td', {}, entry.reason), el('td', {}, entry.quarantine));
      body.append(row);
    }
    document.body.dataset.loaded = 'true';
  } catch (error) {
    document.getElementById('uptime').textContent = 'status unavailable: ' + error.message;
  }
}
refresh();
setInterval(refresh, 2000);
`;
