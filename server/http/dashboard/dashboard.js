// pagelife dashboard: one module, no build step. It keeps a model fed by /api/events (a snapshot,
// then deltas every ~100 ms) and redraws at most once per animation frame.

/** Lifetimes kept in the browser for the timeline (released ones beyond it are forgotten first). */
const MAX_LIFETIMES_KEPT = 600;
/** Rows the timeline draws (the most recent pins). */
const TIMELINE_ROWS = 24;
/** Rates are computed over at least this much history (ms). */
const RATE_WINDOW_MS = 1000;
/** Reconnect backoff bounds (ms). */
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 5000;

const STATE_COLORS = {
  free: '#e7eaee',
  clean: '#90cdf4',
  dirty: '#f6c177',
  pinned: '#dd6b20',
  cow: '#805ad5',
  orphan: '#d53f8c',
  filling: '#f6e05e',
};
const STATE_LABELS = {
  free: 'free',
  clean: 'clean',
  dirty: 'dirty',
  pinned: 'pinned by network',
  cow: 'copy-on-write orphan',
  orphan: 'orphaned by pin budget',
  filling: 'filling',
};
const MARK_STYLES = {
  fill: { color: '#b7791f', label: 'page fill (file read)' },
  transmit: { color: '#2b6cb0', label: 'transmit' },
  retransmit: { color: '#dd6b20', label: 'retransmit' },
  drop: { color: '#c53030', label: 'drop' },
  hold: { color: '#805ad5', label: 'device hold' },
  ack: { color: '#2f855a', label: 'ACK' },
  'stale-retransmit': { color: '#000000', label: 'stale retransmit' },
  orphan: { color: '#d53f8c', label: 'orphaned' },
  fire: { color: '#1d232b', label: 'destructor' },
};
const COUNTER_LABELS = {
  replyPins: 'reply pins',
  replyReleases: 'releases',
  destructorFires: 'destructors fired',
  transmits: 'transmits',
  retransmits: 'retransmits',
  staleRetransmits: 'stale retransmits',
  drops: 'drops',
  holds: 'device holds',
  acks: 'ACKs',
  rtos: 'RTOs',
  fastRetransmits: 'fast retransmits',
  pinOrphans: 'pin-budget orphans',
  netOrphans: 'frag orphans',
  cow: 'copy-on-write',
  pagePins: 'page pins',
  pageFills: 'page fills',
  pageEvictions: 'evictions',
  drcHits: 'DRC hits',
};

const $ = (id) => document.getElementById(id);

const model = {
  t: 0,
  mode: '',
  faults: null,
  pages: 0,
  grid: [],
  codes: {},
  stateOfCode: {},
  counters: { calls: {} },
  pinDuration: { bounds: [], counts: [], sum: 0, count: 0 },
  connections: [],
  lifetimes: new Map(),
  openLifetimes: 0,
  dropped: 0,
  callHistory: [],
};

// ---- the stream -------------------------------------------------------------------------------

let socket = null;
let reconnectMs = RECONNECT_MIN_MS;

function connect() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/events`;
  socket = new WebSocket(url);
  socket.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    model.dropped = m.dropped;
    if (m.type === 'snapshot') {
      applySnapshot(m.state);
      // Live once there is a state to draw, not when the socket opens.
      setStatus('live');
    } else applyDelta(m.delta);
    invalidate();
  };
  socket.onopen = () => {
    reconnectMs = RECONNECT_MIN_MS;
    setStatus('syncing');
  };
  socket.onclose = () => {
    setStatus('reconnecting');
    setTimeout(connect, reconnectMs);
    reconnectMs = Math.min(reconnectMs * 2, RECONNECT_MAX_MS);
  };
}

function setStatus(s) {
  const el = $('status');
  el.dataset.status = s;
  el.textContent = s === 'live' ? 'live' : `${s}…`;
}

function applySnapshot(s) {
  model.codes = s.pageCache.codes;
  model.stateOfCode = Object.fromEntries(Object.entries(model.codes).map(([state, code]) => [code, state]));
  model.pages = s.pageCache.pages;
  model.grid = Array.from(s.pageCache.grid);
  model.lifetimes = new Map(s.lifetimes.map((l) => [l.destructor, l]));
  model.callHistory = [];
  applyCommon(s);
}

function applyDelta(d) {
  if (d.grid) model.grid = Array.from(d.grid);
  for (const [pfn, code] of d.cells ?? []) model.grid[pfn] = code;
  for (const l of d.lifetimes) model.lifetimes.set(l.destructor, l);
  const p = detail.pfn;
  if (p >= 0 && (d.grid || d.cells?.some(([pfn]) => pfn === p) || d.lifetimes.some((l) => l.pfns.includes(p)))) void showPageDetail(p);
  pruneLifetimes();
  applyCommon(d);
  // Some changed lifetimes did not fit in the delta: ask for a snapshot rather than show stale bars.
  if (d.lifetimesOmitted > 0 && socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'resync' }));
}

function applyCommon(x) {
  model.t = x.t;
  model.mode = x.mode;
  model.faults = x.faults;
  model.counters = x.counters;
  model.pinDuration = x.pinDuration;
  model.connections = x.connections;
  model.openLifetimes = x.openLifetimes;
  model.callHistory.push({ t: x.t, calls: x.counters.calls });
  while (model.callHistory.length > 2 && model.t - model.callHistory[1].t >= RATE_WINDOW_MS) model.callHistory.shift();
}

function pruneLifetimes() {
  if (model.lifetimes.size <= MAX_LIFETIMES_KEPT) return;
  // Lifetimes that show a stale retransmit are the last to go: the timeline keeps them in view.
  const released = [...model.lifetimes.values()].filter((l) => l.releasedAt !== null).sort((a, b) => Number(hasStaleMark(a)) - Number(hasStaleMark(b)) || a.pinnedAt - b.pinnedAt);
  for (const l of released.slice(0, model.lifetimes.size - MAX_LIFETIMES_KEPT)) model.lifetimes.delete(l.destructor);
}

// ---- drawing ----------------------------------------------------------------------------------

let frameRequested = false;
function invalidate() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    render();
  });
}

function render() {
  const mode = $('mode');
  mode.textContent = `reply mode: ${model.mode}`;
  mode.dataset.mode = model.mode;
  const dropped = $('dropped');
  dropped.textContent = `dropped ${model.dropped}`;
  dropped.dataset.dropped = String(model.dropped);
  drawGrid();
  drawTimeline();
  renderCounters();
  renderCalls();
  drawHistogram();
  renderConnections();
  renderFaults();
}

/** Cell size and columns so the grid fills the canvas width and at most its height. */
function gridGeometry(canvas) {
  const n = Math.max(model.pages, 1);
  const cell = Math.max(1, Math.min(24, Math.floor(Math.sqrt((canvas.width * canvas.height) / n))));
  let c = cell;
  while (c > 1 && Math.ceil(n / Math.floor(canvas.width / c)) * c > canvas.height) c--;
  return { cell: c, cols: Math.floor(canvas.width / c) };
}

function drawGrid() {
  const canvas = $('grid');
  const ctx = canvas.getContext('2d');
  const { cell, cols } = gridGeometry(canvas);
  // Even one pixel per frame may not fit a very large cache: grow the canvas rather than hide frames.
  const needed = Math.ceil(model.pages / cols) * cell;
  if (needed > canvas.height) canvas.height = needed;
  const gap = cell >= 6 ? 1 : 0;
  // Published so a test (or a curious reader) can find a frame's cell.
  canvas.dataset.cell = String(cell);
  canvas.dataset.cols = String(cols);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const counts = {};
  for (let pfn = 0; pfn < model.grid.length; pfn++) {
    const state = model.stateOfCode[model.grid[pfn]] ?? 'free';
    counts[state] = (counts[state] ?? 0) + 1;
    ctx.fillStyle = STATE_COLORS[state];
    ctx.fillRect((pfn % cols) * cell, Math.floor(pfn / cols) * cell, cell - gap, cell - gap);
  }
  $('cache-size').textContent = `${model.pages} pages of 4 KiB`;
  $('legend').replaceChildren(
    ...Object.keys(STATE_COLORS).map((state) => {
      const li = document.createElement('li');
      li.innerHTML = `<i style="background:${STATE_COLORS[state]}"></i>${STATE_LABELS[state]} <b data-state-count="${state}">${counts[state] ?? 0}</b>`;
      return li;
    }),
  );
}

function pfnAt(canvas, ev) {
  const r = canvas.getBoundingClientRect();
  const x = ((ev.clientX - r.left) * canvas.width) / r.width;
  const y = ((ev.clientY - r.top) * canvas.height) / r.height;
  const { cell, cols } = gridGeometry(canvas);
  const col = Math.floor(x / cell);
  if (col >= cols) return -1;
  const pfn = Math.floor(y / cell) * cols + col;
  return pfn < model.pages ? pfn : -1;
}

function openLifetimesOf(pfn) {
  return [...model.lifetimes.values()].filter((l) => l.releasedAt === null && l.pfns.includes(pfn));
}

function showTip(tip, panel, ev, text) {
  const r = panel.getBoundingClientRect();
  tip.textContent = text;
  tip.hidden = false;
  tip.style.left = `${ev.clientX - r.left + 14}px`;
  tip.style.top = `${ev.clientY - r.top + 14}px`;
}

function setupGridEvents() {
  const canvas = $('grid');
  const tip = $('grid-tip');
  canvas.addEventListener('mousemove', (ev) => {
    const pfn = pfnAt(canvas, ev);
    if (pfn < 0) return void (tip.hidden = true);
    const state = model.stateOfCode[model.grid[pfn]] ?? 'free';
    const pins = openLifetimesOf(pfn).map((l) => `${l.returnedAt === null ? 'pinned' : 'held by the network, not pinned'} by conn ${l.conn} xid ${hex(l.xid)} for ${fmtMs(model.t - l.pinnedAt)}`);
    showTip(tip, $('cache-panel'), ev, [`page frame ${pfn}: ${STATE_LABELS[state]}`, ...pins, 'click for detail'].join('\n'));
  });
  canvas.addEventListener('mouseleave', () => (tip.hidden = true));
  canvas.addEventListener('click', (ev) => {
    const pfn = pfnAt(canvas, ev);
    if (pfn >= 0) void showPageDetail(pfn);
  });
}

/** The frame whose detail is shown (refreshed when a delta touches it), and whether a fetch is under way. */
const detail = { pfn: -1, busy: false, again: false };

async function showPageDetail(pfn) {
  if (detail.busy && detail.pfn === pfn) {
    detail.again = true;
    return;
  }
  detail.pfn = pfn;
  detail.busy = true;
  try {
    await fetchPageDetail(pfn);
  } finally {
    detail.busy = false;
  }
  if (detail.again) {
    detail.again = false;
    void showPageDetail(detail.pfn);
  }
}

async function fetchPageDetail(pfn) {
  const el = $('page-detail');
  const res = await fetch(`/api/pages/${pfn}`);
  if (!res.ok) {
    el.textContent = `page ${pfn}: ${res.status}`;
    return;
  }
  const d = await res.json();
  const rows = [
    ['frame', d.pfn],
    ['state', STATE_LABELS[d.state] ?? d.state],
    // The file's path in its export when the server has seen it named, else its device:inode.
    ['file', d.path ? `${d.path} (${d.file})` : (d.file ?? '—')],
    ['offset', d.file ? `${d.offset} (page ${d.index})` : '—'],
    ['pins', d.pins],
    ['pinned for', d.pinnedForMs === null ? '—' : fmtMs(d.pinnedForMs)],
  ];
  for (const l of d.heldBy) {
    const how = l.returnedAt === null ? 'pinned by' : 'unpinned, network holds';
    rows.push([`${how} d${l.destructor}`, `conn ${l.conn}, xid ${hex(l.xid)}, ${l.bytes} bytes of ${l.file} at ${l.offset}, for ${fmtMs(model.t - l.pinnedAt)}`]);
    rows.push(['held by skbs', `${l.holders.join(', ') || 'none listed'}${l.holdersUntracked ? ` and ${l.holdersUntracked} more` : ''}`]);
    rows.push(['events', describeMarks(l)]);
  }
  for (const l of d.recent.slice(-3)) rows.push([`earlier d${l.destructor}`, `pinned ${fmtMs(l.returnedAt - l.pinnedAt)}, destructor after ${fmtMs(l.heldMs ?? 0)}; ${describeMarks(l)}`]);
  const dl = document.createElement('dl');
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = String(v);
    dl.append(dt, dd);
  }
  el.replaceChildren(dl);
}

function describeMarks(l) {
  const parts = Object.entries(l.counts).map(([k, n]) => `${MARK_STYLES[k]?.label ?? k} ×${n}`);
  if (l.orphaned) parts.push(`orphaned (${l.orphaned})`);
  return parts.join(', ') || 'none yet';
}

/** The lifetimes the timeline shows: the most recent pins, oldest first. */
/** Rows of the timeline: the latest pins, but a few showing the bug (a stale retransmit) stay in view. */
const TIMELINE_STALE_ROWS = 6;

function timelineRows() {
  const all = [...model.lifetimes.values()].sort((a, b) => a.pinnedAt - b.pinnedAt);
  const stale = all.filter(hasStaleMark).slice(-TIMELINE_STALE_ROWS);
  const latest = all.filter((l) => !stale.includes(l)).slice(-(TIMELINE_ROWS - stale.length));
  return [...stale, ...latest].sort((a, b) => a.pinnedAt - b.pinnedAt);
}

function hasStaleMark(l) {
  return l.marks.some((m) => m.kind === 'stale-retransmit');
}

/** A pin the network stretched: pages returned to the cache only after a retransmission of their bytes. */
function stretched(l) {
  return l.returnedAt !== null && l.marks.some((m) => m.kind === 'retransmit' && m.t <= l.returnedAt);
}

/** Legacy's bug made visible: a stale retransmit after the pages were already back in the cache. */
function staleAfterRelease(l) {
  return l.returnedAt !== null && l.marks.some((m) => m.kind === 'stale-retransmit' && m.t >= l.returnedAt);
}

const TIMELINE_LABEL_W = 130;
const TIMELINE_AXIS_H = 18;

/** When a row's story begins: its pin, or the first file read filling its pages (a READ that missed). */
function rowStart(l) {
  return Math.min(l.pinnedAt, ...l.marks.filter((m) => m.kind === 'fill').map((m) => m.t - (m.n ?? 0)));
}

function hasFill(l) {
  return (l.counts.fill ?? 0) > 0;
}

function timelineScale(canvas, rows) {
  const t0 = rows.length ? Math.min(...rows.map(rowStart)) : model.t - 1000;
  const ends = rows.map((l) => Math.max(l.releasedAt ?? model.t, ...l.marks.map((m) => m.t)));
  const t1 = Math.max(model.t, ...ends, t0 + 1);
  const w = canvas.width - TIMELINE_LABEL_W - 8;
  return { t0, t1, x: (t) => TIMELINE_LABEL_W + ((t - t0) / (t1 - t0)) * w };
}

function drawTimeline() {
  const canvas = $('timeline');
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const rows = timelineRows();
  const { t0, t1, x } = timelineScale(canvas, rows);
  const rowH = Math.max(6, Math.min(16, Math.floor((canvas.height - TIMELINE_AXIS_H) / Math.max(rows.length, 1))));
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  drawTimeAxis(ctx, canvas, t0, t1, x, rows.length * rowH);
  let nStretched = 0;
  let nStale = 0;
  let nFilled = 0;
  rows.forEach((l, i) => {
    const y = i * rowH;
    const open = l.releasedAt === null;
    if (stretched(l)) nStretched++;
    if (hasFill(l)) nFilled++;
    if (staleAfterRelease(l)) nStale++;
    ctx.fillStyle = '#69737f';
    ctx.fillText(`c${l.conn} xid ${hex(l.xid)}`, 2, y + rowH / 2);
    const x0 = x(l.pinnedAt);
    const x1 = Math.max(x(l.returnedAt ?? model.t), x0 + 2);
    const pinnedNow = l.returnedAt === null;
    ctx.fillStyle = l.orphaned ? STATE_COLORS.orphan : pinnedNow ? STATE_COLORS.pinned : '#63b3ed';
    // Pinned-now bars are lighter so the marks on them (retransmits are orange too) stay visible.
    ctx.globalAlpha = pinnedNow ? 0.45 : 1;
    ctx.fillRect(x0, y + 2, x1 - x0, rowH - 4);
    ctx.globalAlpha = 1;
    if (!pinnedNow) {
      // Legacy: the network kept referencing pages the cache had already taken back.
      const x2 = x(l.releasedAt ?? model.t);
      if (x2 > x1 + 1) {
        ctx.strokeStyle = open ? STATE_COLORS.pinned : '#a0aec0';
        ctx.lineWidth = 2;
        ctx.setLineDash([4, 3]);
        ctx.beginPath();
        ctx.moveTo(x1, y + rowH / 2);
        ctx.lineTo(x2, y + rowH / 2);
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
    for (const m of l.marks) drawMark(ctx, m, x, y, rowH);
  });
  canvas.dataset.rows = String(rows.length);
  canvas.dataset.filled = String(nFilled);
  canvas.dataset.stretched = String(nStretched);
  canvas.dataset.staleAfterRelease = String(nStale);
  $('timeline-legend').replaceChildren(
    ...Object.entries(MARK_STYLES).map(([, s]) => {
      const li = document.createElement('li');
      li.innerHTML = `<i style="background:${s.color}"></i>${s.label}`;
      return li;
    }),
    legendItem(STATE_COLORS.pinned, 'pinned now'),
    legendItem('#63b3ed', 'pinned, then returned to the cache'),
    legendItem('#a0aec0', 'network holds unpinned pages (legacy)'),
    legendItem('', `filled from the file (cache miss): ${nFilled}`),
    legendItem('', `stretched by retransmission: ${nStretched}`),
    // The counter counts every stale retransmission since start; the timeline shows those in view.
    legendItem('', `stale retransmit after release: ${nStale} shown of ${model.counters.staleRetransmits ?? 0} counted`),
  );
}

/** Ticks at a 1-2-5 step giving about five labels, as offsets from the first pin shown. */
function drawTimeAxis(ctx, canvas, t0, t1, x, plotBottom) {
  const span = t1 - t0;
  const raw = span / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const axisY = canvas.height - TIMELINE_AXIS_H / 2;
  ctx.fillStyle = '#69737f';
  ctx.strokeStyle = '#dde1e6';
  ctx.lineWidth = 1;
  ctx.textAlign = 'center';
  for (let d = 0; d <= span; d += step) {
    const px = x(t0 + d);
    ctx.beginPath();
    ctx.moveTo(px, 0);
    ctx.lineTo(px, plotBottom);
    ctx.stroke();
    ctx.fillText(fmtMs(d), Math.min(px, canvas.width - 24), axisY);
  }
  ctx.textAlign = 'start';
}

function legendItem(color, text) {
  const li = document.createElement('li');
  li.innerHTML = color ? `<i style="background:${color}"></i>` : '';
  li.append(text);
  return li;
}

/** One mark on a row at height y; xOf maps a time to the canvas. */
function drawMark(ctx, m, xOf, y, h) {
  const s = MARK_STYLES[m.kind];
  if (!s) return;
  const x = xOf(m.t);
  ctx.strokeStyle = s.color;
  ctx.fillStyle = s.color;
  ctx.lineWidth = m.kind === 'stale-retransmit' ? 3 : 2;
  if (m.kind === 'fill') {
    // The file read, ending at the mark: a span left of the pin (the first and the latest fill are kept).
    // At least a few pixels: a read from the page cache's file is short beside a network's round trips.
    const w = Math.max(4, x - xOf(m.t - (m.n ?? 0)));
    ctx.fillRect(x - w, y + 1, w, h - 2);
  } else if (m.kind === 'drop') {
    ctx.beginPath();
    ctx.moveTo(x - 3, y + 2);
    ctx.lineTo(x + 3, y + h - 2);
    ctx.moveTo(x + 3, y + 2);
    ctx.lineTo(x - 3, y + h - 2);
    ctx.stroke();
  } else if (m.kind === 'retransmit') {
    ctx.beginPath();
    ctx.moveTo(x, y + 1);
    ctx.lineTo(x + 4, y + h - 1);
    ctx.lineTo(x - 4, y + h - 1);
    ctx.fill();
  } else if (m.kind === 'fire') {
    ctx.beginPath();
    ctx.arc(x, y + h / 2, 2.5, 0, Math.PI * 2);
    ctx.fill();
  } else {
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x, y + h);
    ctx.stroke();
  }
}

function setupTimelineEvents() {
  const canvas = $('timeline');
  const tip = $('timeline-tip');
  canvas.addEventListener('mousemove', (ev) => {
    const rows = timelineRows();
    const r = canvas.getBoundingClientRect();
    const y = ((ev.clientY - r.top) * canvas.height) / r.height;
    const rowH = Math.max(6, Math.min(16, Math.floor((canvas.height - TIMELINE_AXIS_H) / Math.max(rows.length, 1))));
    const l = rows[Math.floor(y / rowH)];
    if (!l) return void (tip.hidden = true);
    const marks = [...l.marks].sort((a, b) => a.t - b.t).map((m) => `  ${fmtOffset(m.t - l.pinnedAt)} ${MARK_STYLES[m.kind]?.label ?? m.kind}${m.reason ? ` (${m.reason})` : ''}${m.kind === 'fill' ? ` ${fmtMs(m.n ?? 0)}` : ''}`);
    if (hasFill(l)) marks.unshift(`  ${l.counts.fill} page${l.counts.fill === 1 ? '' : 's'} filled from the file before the pin`);
    const pinned = l.returnedAt === null ? `pinned for ${fmtMs(model.t - l.pinnedAt)} so far` : `pinned ${fmtMs(l.returnedAt - l.pinnedAt)}`;
    const net = l.releasedAt === null ? 'network still holds it' : `destructor after ${fmtMs(l.releasedAt - l.pinnedAt)}`;
    const held = `${pinned}; ${net}`;
    showTip(tip, $('timeline-panel'), ev, [`conn ${l.conn} xid ${hex(l.xid)} destructor ${l.destructor}`, `${l.bytes} bytes of ${l.file} at ${l.offset}, pages ${l.pfns.join(' ')}`, held, ...marks].join('\n'));
  });
  canvas.addEventListener('mouseleave', () => (tip.hidden = true));
}

function renderCounters() {
  const dl = $('counters');
  if (dl.childElementCount === 0) {
    for (const [key, label] of Object.entries(COUNTER_LABELS)) {
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.dataset.counter = key;
      dl.append(dt, dd);
    }
    const dt = document.createElement('dt');
    dt.textContent = 'pinned now';
    const dd = document.createElement('dd');
    dd.dataset.counter = 'openLifetimes';
    dl.append(dt, dd);
  }
  for (const dd of dl.querySelectorAll('dd')) {
    const key = dd.dataset.counter;
    const v = key === 'openLifetimes' ? model.openLifetimes : model.counters[key] ?? 0;
    dd.textContent = String(v);
    dd.dataset.value = String(v);
  }
}

function renderCalls() {
  const first = model.callHistory[0];
  const last = model.callHistory[model.callHistory.length - 1];
  const dt = first && last && last.t > first.t ? (last.t - first.t) / 1000 : 0;
  const rows = Object.entries(model.counters.calls ?? {}).sort((a, b) => b[1] - a[1]);
  $('calls').tBodies[0].replaceChildren(
    ...rows.map(([proc, total]) => {
      const rate = dt > 0 ? (total - (first.calls[proc] ?? 0)) / dt : 0;
      const tr = document.createElement('tr');
      tr.dataset.proc = proc;
      tr.innerHTML = `<td>${proc}</td><td>${rate.toFixed(1)}</td><td data-total>${total}</td>`;
      return tr;
    }),
  );
}

function drawHistogram() {
  const canvas = $('histogram');
  const ctx = canvas.getContext('2d');
  const h = model.pinDuration;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const n = h.counts.length;
  if (!n) return;
  const max = Math.max(...h.counts, 1);
  const barW = canvas.width / n;
  const plotH = canvas.height - 30;
  ctx.font = '10px system-ui, sans-serif';
  ctx.textAlign = 'center';
  h.counts.forEach((c, i) => {
    const bh = (c / max) * plotH;
    ctx.fillStyle = '#dd6b20';
    ctx.fillRect(i * barW + 1, plotH - bh, barW - 2, bh);
    ctx.fillStyle = '#69737f';
    const label = i < h.bounds.length ? `≤${shortMs(h.bounds[i])}` : '+∞';
    ctx.save();
    ctx.translate(i * barW + barW / 2, plotH + 4);
    ctx.rotate(Math.PI / 5);
    ctx.textAlign = 'left';
    ctx.fillText(label, 0, 0);
    ctx.restore();
    if (c) {
      ctx.fillStyle = '#1d232b';
      ctx.fillText(String(c), i * barW + barW / 2, Math.max(plotH - bh - 4, 8));
    }
  });
  $('pin-summary').textContent = h.count ? `${h.count} releases, mean ${fmtMs(h.sum / h.count)}, median ≤ ${shortMs(quantileBound(h, 0.5))}, p99 ≤ ${shortMs(quantileBound(h, 0.99))}` : 'no releases yet';
}

/** The upper bound of the bucket holding quantile q (a histogram cannot say more). */
function quantileBound(h, q) {
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i];
    if (seen >= q * h.count) return i < h.bounds.length ? h.bounds[i] : Infinity;
  }
  return Infinity;
}

function renderConnections() {
  $('connections').tBodies[0].replaceChildren(
    ...model.connections.map((c) => {
      const tr = document.createElement('tr');
      tr.dataset.conn = String(c.id);
      // No ssthresh before the first loss: Linux's "infinite" (TCP_INFINITE_SSTHRESH), shown as ∞.
      const cells = [c.id, `${c.remote} ${c.transport}`, c.bytesInFlight, c.cwnd, c.ssthresh ?? '∞', fmtMs(c.srttMs), fmtMs(c.rtoMs), c.retransmits, c.staleRetransmits, c.dupAcksIn, c.pinnedReplies];
      for (const v of cells) {
        const td = document.createElement('td');
        td.textContent = String(v);
        tr.append(td);
      }
      return tr;
    }),
  );
}

function renderFaults() {
  if (!model.faults) return;
  const form = $('fault-form');
  for (const input of form.querySelectorAll('input')) {
    // A field the user changed keeps its value until applied.
    if (!('edited' in input.dataset)) input.value = String(model.faults[input.name] ?? '');
  }
}

function setupFaultForms() {
  const message = $('fault-message');
  // The control token, when the page was opened with one (a server reachable beyond loopback).
  const token = document.querySelector('meta[name="pagelife-token"]')?.content ?? '';
  const post = async (url, body) => {
    const headers = { 'content-type': 'application/json', ...(token ? { 'x-pagelife-token': token } : {}) };
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    const json = await res.json();
    if (!res.ok) throw new Error(json.message ?? res.statusText);
    return json;
  };
  const say = (text, error = false) => {
    message.textContent = text;
    if (error) message.dataset.error = '';
    else delete message.dataset.error;
  };
  const numbers = (form) => Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== '').map(([k, v]) => [k, Number(v)]));
  const faultForm = $('fault-form');
  faultForm.addEventListener('input', (ev) => (ev.target.dataset.edited = ''));
  faultForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const wanted = numbers(ev.target);
    const changed = Object.fromEntries(Object.entries(wanted).filter(([k, v]) => model.faults?.[k] !== v));
    if (!Object.keys(changed).length) return say('nothing changed');
    try {
      const now = await post('/api/faults', changed);
      for (const input of faultForm.querySelectorAll('input')) delete input.dataset.edited;
      model.faults = now;
      invalidate();
      say(`faults set: ${Object.entries(changed).map(([k, v]) => `${k}=${v}`).join(', ')}`);
    } catch (e) {
      say(String(e.message), true);
    }
  });
  $('oneoff-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = numbers(ev.target);
    try {
      await post('/api/faults/one-off', body);
      say(`queued: ${Object.entries(body).map(([k, v]) => `${k}=${v}`).join(', ')}`);
      ev.target.reset();
    } catch (e) {
      say(String(e.message), true);
    }
  });
}

// ---- formatting -------------------------------------------------------------------------------

function fmtMs(ms) {
  if (!Number.isFinite(ms)) return '∞';
  if (ms === 0) return '0';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A time relative to the pin: fills come before it. */
function fmtOffset(ms) {
  return ms < 0 ? `−${fmtMs(-ms)}` : `+${fmtMs(ms)}`;
}

function shortMs(ms) {
  if (!Number.isFinite(ms)) return '∞';
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

function hex(n) {
  return `0x${(n >>> 0).toString(16)}`;
}

setupGridEvents();
setupTimelineEvents();
setupFaultForms();
connect();
