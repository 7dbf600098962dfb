// chattap live debugger. One page, no build step. Messages arrive as JSON
// lines on a streamed fetch (so the admin token travels in an
// Authorization header, never in a URL); they are queued as they come and
// applied once per animation frame, a bounded time's worth per frame, into
// a bounded list.
(() => {
  'use strict';
  const MAX_ROWS = 300;          // exchanges kept, and at most as many rows in the DOM
  const FRAME_BUDGET_MS = 10;     // parsing per frame; the rest waits for the next frame
  const MAX_QUEUED_CHARS = 16 << 20; // beyond this the oldest waiting lines are skipped
  const TOKEN_KEY = 'chattap-admin-token';
  const $ = (id) => document.getElementById(id);

  const st = {
    token: null, paused: false, live: false,
    rows: new Map(), order: [], index: new Map(), seen: new Map(),
    queue: [], qHead: 0, queuedChars: 0, fresh: [], dirty: new Set(), renderAll: false,
    received: 0, longestFrame: 0, skippedServer: 0, skippedPage: 0, whilePaused: 0, frames: 0,
    conv: '', event: '', names: new Set(), selected: null,
    settings: null, known: [], abort: null, retryIn: 1000, nextRowID: 0,
  };
  window.chattapDebugger = st; // read by the browser test

  // ---- sign in -----------------------------------------------------------
  function takeTokenFromFragment() {
    const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }
  function showSignIn(message) {
    $('app').hidden = true; $('signin').hidden = false;
    $('signin-error').hidden = !message; $('signin-error').textContent = message || '';
    setConn('off', 'not signed in');
    $('token').focus();
  }
  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY); st.token = null;
    if (st.abort) st.abort.abort();
    showSignIn(message);
  }
  function signIn(token) {
    st.token = token; $('signin').hidden = true; $('app').hidden = false;
    connect(); pollState();
  }
  const auth = () => ({ Authorization: 'Bearer ' + st.token });

  // ---- the stream --------------------------------------------------------
  function setConn(cls, text) { $('conn').className = 'conn ' + cls; $('conn-text').textContent = text; }
  async function connect() {
    if (!st.token) return;
    const ctrl = new AbortController(); st.abort = ctrl;
    setConn('off', 'connecting…');
    let res;
    try {
      res = await fetch('/debugger/stream', { headers: auth(), signal: ctrl.signal, cache: 'no-store' });
    } catch (e) { return reconnect(ctrl); }
    if (res.status === 401 || res.status === 403) return signOut('That token was refused.');
    if (!res.ok || !res.body) return reconnect(ctrl);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      let r;
      try { r = await reader.read(); } catch (e) { break; }
      if (r.done) break;
      buf += dec.decode(r.value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        if (line) { st.queue.push(line); st.queuedChars += line.length; }
      }
      while (st.queuedChars > MAX_QUEUED_CHARS && st.qHead < st.queue.length) {
        st.queuedChars -= st.queue[st.qHead++].length; st.skippedPage++;
      }
      schedule();
    }
    reconnect(ctrl);
  }
  function reconnect(ctrl) {
    if (ctrl.signal.aborted || !st.token) return;
    st.live = false; setConn('off', 'reconnecting…');
    setTimeout(connect, st.retryIn);
    st.retryIn = Math.min(st.retryIn * 2, 10000);
  }

  // ---- the model ---------------------------------------------------------
  let scheduled = false;
  function schedule() { if (!scheduled) { scheduled = true; requestAnimationFrame(frame); } }

  function frame() {
    scheduled = false; st.frames++;
    const began = performance.now();
    const q = st.queue;
    let n = 0;
    while (st.qHead < q.length) {
      const line = q[st.qHead++]; n++;
      st.queuedChars -= line.length;
      let l; try { l = JSON.parse(line); } catch (e) { l = null; }
      if (l) apply(l);
      if ((n & 15) === 0 && performance.now() - began > FRAME_BUDGET_MS) break;
    }
    if (st.qHead >= q.length) { st.queue = []; st.qHead = 0; }
    else { if (st.qHead > 4096) { st.queue = q.slice(st.qHead); st.qHead = 0; } schedule(); }
    if (!st.paused) render();
    else if (n) renderStatus();
    st.longestFrame = Math.max(st.longestFrame, performance.now() - began);
  }

  function remember(key) {
    if (st.seen.has(key)) return false;
    st.seen.set(key, true);
    if (st.seen.size > MAX_ROWS * 40) st.seen.delete(st.seen.keys().next().value);
    return true;
  }

  function apply(l) {
    switch (l.k) {
      case 'live': st.live = true; st.retryIn = 1000; setConn(st.paused ? 'paused' : 'live', st.paused ? 'paused' : 'live'); return;
      case 'skipped': st.skippedServer += l.skipped; return;
      case 'record': return applyRecord(l);
      case 'event': return applyEvent(l);
    }
  }

  function recordIDs(d) { return [d.exchange_id, d.exchange, d.id, d.record_id].filter((v) => typeof v === 'string' && v); }

  function rowFor(ids) {
    for (const id of ids) { const k = st.index.get(id); if (k !== undefined && st.rows.has(k)) return st.rows.get(k); }
    const row = { key: ++st.nextRowID, ids: [], recs: [], events: [], conv: '', at: Date.now(), el: null };
    st.rows.set(row.key, row); st.order.push(row.key); st.fresh.push(row);
    while (st.order.length > MAX_ROWS) evict(st.order.shift());
    return row;
  }
  function link(row, ids) {
    for (const id of ids) if (!st.index.has(id) || st.index.get(id) !== row.key) { st.index.set(id, row.key); row.ids.push(id); }
  }
  function evict(key) {
    const row = st.rows.get(key); if (!row) return;
    st.rows.delete(key); st.dirty.delete(row);
    for (const id of row.ids) if (st.index.get(id) === key) st.index.delete(id);
    if (row.el) row.el.remove();
  }
  function touch(row) { st.received++; if (st.paused) st.whilePaused++; st.dirty.add(row); }

  function applyRecord(l) {
    const d = l.data || { id: 'too-large-' + l.size, source: l.subject, note: 'record of ' + l.size + ' bytes, not shown' };
    const ids = recordIDs(d);
    if (!remember('r|' + ids.join('|') + '|' + (d.index || 0) + '|' + l.subject)) return;
    const row = rowFor(ids);
    link(row, ids);
    d._subject = l.subject;
    row.recs.push(d);
    row.recs.sort((a, b) => (a.index || 0) - (b.index || 0));
    if (!row.conv && d.conversation_id) row.conv = d.conversation_id;
    touch(row);
  }

  function applyEvent(l) {
    const d = l.data || { messageId: l.subject + '-' + l.size, note: 'event of ' + l.size + ' bytes, not shown' };
    if (!remember('e|' + (d.messageId || JSON.stringify(d)))) return;
    const ids = l.record ? [l.record] : [];
    const row = rowFor(ids);
    link(row, ids);
    d._subject = l.subject; d._record = l.record;
    row.events.push(d);
    if (!row.conv && d.properties && d.properties.conversation_id) row.conv = String(d.properties.conversation_id);
    const name = eventName(d);
    if (!st.names.has(name)) { st.names.add(name); addEventOption(name); }
    touch(row);
  }

  // ---- rendering ---------------------------------------------------------
  function eventName(e) { return e.type === 'track' ? (e.event || 'track') : (e.type || 'message'); }
  function eventClass(name) {
    if (/Started$/.test(name)) return 't-started';
    if (/Message Sent$/.test(name)) return 't-sent';
    if (/Message Received$/.test(name)) return 't-received';
    if (/Ended$/.test(name)) return 't-ended';
    if (name === 'identify') return 't-identify';
    return 't-other';
  }
  function snippet(v, depth) {
    if (v == null || depth > 4) return '';
    if (typeof v === 'string') return '';
    if (Array.isArray(v)) { for (const x of v) { const s = snippet(x, depth + 1); if (s) return s; } return ''; }
    if (typeof v === 'object') {
      for (const k of ['body', 'text', 'message_body', 'message']) if (typeof v[k] === 'string' && v[k]) return v[k];
      for (const k of Object.keys(v)) { const s = snippet(v[k], depth + 1); if (s) return s; }
    }
    return '';
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function clock(t) {
    const d = new Date(t); if (isNaN(d)) return '';
    return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }
  function matches(row) {
    if (st.conv) {
      const q = st.conv.toLowerCase();
      if (!row.conv.toLowerCase().includes(q)) return false;
    }
    if (st.event && !row.events.some((e) => eventName(e) === st.event)) return false;
    return true;
  }
  function insideOf(rec) {
    // Version 2 records hold the events of the exchange; version 1
    // observations are one event each.
    const items = Array.isArray(rec.events) ? rec.events : [rec];
    return items.map((it) => {
      const src = it.source || rec.source || '';
      const kind = it.kind || it.name || (it.packet && (it.packet.name || it.packet.event)) || '';
      return { label: [src, kind].filter(Boolean).join(' · '), text: snippet(it.payload !== undefined ? it.payload : it, 0) };
    });
  }
  function buildRow(row) {
    const li = row.el || el('li', 'row');
    li.replaceChildren();
    const rec = el('div', 'rec');
    if (row.recs.length) {
      const first = row.recs[0];
      const top = el('div', 'top');
      top.append(el('span', 'time mono', clock(first.received_at || first.time || row.at)), el('span', 'src', first.source || first._subject));
      if (first.kind) top.append(el('span', 'kind', first.kind));
      const status = row.recs.map((r) => r.status).find((s) => s);
      if (status) top.append(el('span', 'status' + (status >= 300 ? ' bad' : ''), String(status)));
      rec.append(top);
      const id = first.exchange_id || first.exchange || first.id || '';
      const meta = el('div', 'meta');
      if (row.conv) meta.append(el('span', 'conv mono', row.conv));
      meta.append(el('span', 'rid mono', 'v' + (first.v || '?') + ' · …' + id.slice(-8)));
      meta.lastChild.title = 'record ' + id;
      rec.append(meta);
      const ul = el('ul', 'inside');
      for (const r of row.recs) for (const it of insideOf(r)) {
        const item = el('li');
        item.append(el('span', 'k', it.label + (it.text ? ': ' : '')), document.createTextNode(it.text));
        ul.append(item);
      }
      rec.append(ul);
      rec.addEventListener('click', () => select(rec, 'Record ' + (first.exchange_id || first.exchange || first.id || ''), row.recs.length === 1 ? row.recs[0] : row.recs));
    } else {
      rec.classList.add('missing');
      rec.append(el('div', '', 'record ' + (row.ids[0] || '') + ' is not in view'));
      if (row.conv) rec.append(el('div', 'conv mono', row.conv));
    }
    const evs = el('div', 'evs');
    if (!row.events.length) evs.append(el('div', 'none', row.recs.length ? 'no Live Chat event' : ''));
    for (const e of row.events) {
      const name = eventName(e);
      const chip = el('div', 'chip ' + eventClass(name));
      chip.append(el('span', 'tag'), el('span', 'name', name.replace(/^Live Chat /, '')));
      const traits = e.traits || (e.context && e.context.traits) || {};
      const body = e.type === 'track' ? ((e.properties && e.properties.message_body) || '') : (traits.name || traits.email || '');
      chip.append(el('span', 'body', String(body)));
      chip.title = name + ' · ' + (e.messageId || '');
      chip.addEventListener('click', (ev) => { ev.stopPropagation(); select(chip, name, e); });
      evs.append(chip);
    }
    li.append(rec, evs);
    row.el = li;
    return li;
  }
  function select(node, title, value) {
    if (st.selected) st.selected.classList.remove('selected');
    st.selected = node; node.classList.add('selected');
    const clean = JSON.parse(JSON.stringify(value, (k, v) => (k === '_subject' || k === '_record') ? undefined : v));
    const meta = [];
    const one = Array.isArray(value) ? value[0] : value;
    if (one && one._subject) meta.push('subject ' + one._subject);
    if (one && one._record) meta.push('Chattap-Record ' + one._record);
    $('detail-title').textContent = title;
    $('detail').textContent = (meta.length ? '// ' + meta.join('\n// ') + '\n' : '') + JSON.stringify(clean, null, 2);
  }

  function render() {
    const list = $('rows');
    if (st.renderAll) {
      st.renderAll = false; st.fresh = []; st.dirty.clear();
      const frag = document.createDocumentFragment();
      for (let i = st.order.length - 1; i >= 0; i--) {
        const row = st.rows.get(st.order[i]);
        if (row && matches(row)) frag.append(buildRow(row)); else if (row && row.el) { row.el.remove(); }
      }
      list.replaceChildren(frag);
    } else {
      const newRows = st.fresh; st.fresh = [];
      const frag = document.createDocumentFragment();
      for (let i = newRows.length - 1; i >= 0; i--) {
        const row = newRows[i];
        st.dirty.delete(row);
        if (!st.rows.has(row.key) || !matches(row)) continue;
        const li = buildRow(row);
        li.classList.add('fresh');
        frag.append(li);
      }
      if (frag.childNodes.length) list.prepend(frag);
      for (const row of st.dirty) {
        if (!st.rows.has(row.key)) continue;
        if (matches(row)) {
          if (row.el && row.el.isConnected) buildRow(row);
          else { list.prepend(buildRow(row)); }
        } else if (row.el) row.el.remove();
      }
      st.dirty.clear();
    }
    while (list.childElementCount > MAX_ROWS) list.lastElementChild.remove();
    $('empty').hidden = st.rows.size > 0;
    renderStatus();
  }
  function renderStatus() {
    const shown = $('rows').childElementCount;
    const parts = [shown + ' exchange' + (shown === 1 ? '' : 's') + ' shown (newest first, last ' + MAX_ROWS + ' kept)', st.received + ' messages received'];
    const skipped = st.skippedServer + st.skippedPage;
    if (skipped) parts.push(skipped + ' skipped to keep up');
    if (st.paused) parts.push('paused: ' + st.whilePaused + ' new, shown on resume');
    $('status-line').textContent = parts.join(' · ');
  }
  function addEventOption(name) {
    const sel = $('f-event');
    const opt = el('option', '', name); opt.value = name;
    sel.append(opt);
  }

  // ---- state: counts, sinks, settings ------------------------------------
  let pollTimer = null;
  async function pollState() {
    clearTimeout(pollTimer);
    if (!st.token) return;
    try {
      const res = await fetch('/debugger/state', { headers: auth(), cache: 'no-store' });
      if (res.status === 401 || res.status === 403) return signOut('That token was refused.');
      if (res.ok) renderState(await res.json());
    } catch (e) { /* the next poll tries again */ }
    pollTimer = setTimeout(pollState, 2000);
  }
  function renderState(s) {
    st.known = s.known_events || [];
    if (s.settings) applySettings(s.settings);
    $('counting-since').textContent = 'counted since ' + clock(s.counting_since) + ' · records: ' + s.records.minute + '/min, ' + s.records.hour + '/h';
    const counts = new Map((s.events || []).map((e) => [e.event, e]));
    const names = [...new Set([...st.known, ...counts.keys()])];
    const body = $('counts'); body.replaceChildren();
    for (const name of names) {
      const c = counts.get(name) || { minute: 0, hour: 0 };
      const tr = el('tr', eventClass(name));
      const td = el('td'); td.append(el('span', 'name', name.replace(/^Live Chat /, '')));
      tr.append(td, el('td', 'n', String(c.minute)), el('td', 'n', String(c.hour)));
      const sw = el('td', 'sw');
      if (st.known.includes(name) && st.settings) {
        const box = el('input'); box.type = 'checkbox'; box.dataset.event = name;
        box.checked = !(st.settings.disabled_events || []).includes(name);
        box.title = (box.checked ? 'switch off ' : 'switch on ') + name;
        box.addEventListener('change', () => switchEvent(name, box.checked));
        sw.append(box);
      }
      tr.append(sw);
      body.append(tr);
    }
    const sinks = $('sinks'); sinks.replaceChildren();
    if (!(s.sinks || []).length) {
      const tr = el('tr'); const td = el('td', 'muted', 'no sink consumer yet'); td.colSpan = 5; tr.append(td); sinks.append(tr);
    }
    for (const k of s.sinks || []) {
      const tr = el('tr'); tr.dataset.sink = k.name;
      const delivered = k.delivered != null ? String(k.delivered) : 'up to #' + k.acked_seq;
      const dl = el('td', 'n' + (k.dead_letters ? ' bad-n' : ''), String(k.dead_letters));
      const lag = el('td', 'n', String(k.lag)); lag.title = k.in_flight + ' in flight';
      const retry = el('td', 'n', String(k.redelivered)); retry.title = (k.retried != null ? k.retried + ' retries since start' : '');
      tr.append(el('td', '', k.name), el('td', 'n', delivered), retry, dl, lag);
      sinks.append(tr);
    }
  }
  function applySettings(set) {
    st.settings = set;
    const box = $('record');
    box.disabled = false; box.checked = !!set.record_live_chat_events;
  }
  async function putSettings(change) {
    try {
      const res = await fetch('/admin/settings', { method: 'PUT', headers: { ...auth(), 'Content-Type': 'application/json' }, body: JSON.stringify(change) });
      if (res.ok) applySettings(await res.json());
    } catch (e) { /* shown as unchanged on the next poll */ }
    pollState();
  }
  function switchEvent(name, on) {
    const off = new Set((st.settings && st.settings.disabled_events) || []);
    if (on) off.delete(name); else off.add(name);
    putSettings({ disabled_events: [...off] });
  }

  // ---- controls ----------------------------------------------------------
  function setPaused(p) {
    st.paused = p;
    $('pause').textContent = p ? 'Resume' : 'Pause';
    $('pause').classList.toggle('on', p);
    if (st.live) setConn(p ? 'paused' : 'live', p ? 'paused' : 'live');
    if (!p) { st.whilePaused = 0; st.renderAll = true; schedule(); }
    renderStatus();
  }
  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('token').value.trim(); if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t); $('token').value = ''; signIn(t);
    });
    $('pause').addEventListener('click', () => setPaused(!st.paused));
    $('record').addEventListener('change', (e) => putSettings({ record_live_chat_events: e.target.checked }));
    let typing = null;
    $('f-conv').addEventListener('input', (e) => {
      clearTimeout(typing);
      typing = setTimeout(() => { st.conv = e.target.value.trim(); st.renderAll = true; schedule(); }, 120);
    });
    $('f-event').addEventListener('change', (e) => { st.event = e.target.value; st.renderAll = true; schedule(); });
    window.addEventListener('hashchange', () => { const t = takeTokenFromFragment(); if (t && t !== st.token) { if (st.abort) st.abort.abort(); signIn(t); } });
    const token = takeTokenFromFragment();
    if (token) signIn(token); else showSignIn();
  });
})();
