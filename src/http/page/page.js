// wenda's page: ask a question, read the ranked, cited passages, open a
// document at its cited span. Plain JS, no dependencies, same-origin fetches
// only. Every string from the server reaches the DOM as a text node (never
// innerHTML): documents are user-ingested.
'use strict';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'wenda.token';
const MODES = { hybrid: 'SEARCH_MODE_HYBRID', dense: 'SEARCH_MODE_DENSE', lexical: 'SEARCH_MODE_LEXICAL' };
const MODE_NAMES = { SEARCH_MODE_HYBRID: 'hybrid', SEARCH_MODE_DENSE: 'dense', SEARCH_MODE_LEXICAL: 'lexical' };

// ---- small helpers ---------------------------------------------------------

/** Creates an element; string children become text nodes. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== undefined && c !== null && c !== false) e.append(c);
  return e;
}

/** proto3 JSON: 64-bit integers are strings and defaults are omitted. */
function int(v, dflt = 0) {
  const n = typeof v === 'number' ? v : parseInt(v, 10);
  return Number.isFinite(n) ? n : dflt;
}

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

let langNames = null;
try { langNames = new Intl.DisplayNames([navigator.language || 'en', 'en'], { type: 'language' }); } catch { /* old browser */ }
function langLabel(code) {
  let name = '';
  try { name = langNames && code && code !== 'und' ? langNames.of(code) : ''; } catch { /* not a code */ }
  return name && name !== code ? `${name} (${code})` : code || 'unknown';
}

/** A URL safe to link to: http(s) only, never javascript: and the like. */
function safeUrl(u) {
  if (!u) return null;
  try {
    const url = new URL(u, location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch { return null; }
}

function getToken() { try { return sessionStorage.getItem(TOKEN_KEY) || memToken; } catch { return memToken; } }
function setToken(t) {
  memToken = t;
  try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch { /* storage off */ }
  $('forget').hidden = !t;
}
let memToken = '';

// ---- status, errors, token -------------------------------------------------

function setStatus(text) { $('status').textContent = text; }

function clearError() {
  $('error').hidden = true;
  $('error-msg').textContent = '';
  $('error-fields').replaceChildren();
  for (const c of document.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
}

const FIELD_CONTROLS = { query: 'q', top_k: 'k', languages: 'lang', mode: 'mode', filter: 'filter' };
function showError(err) {
  $('error-msg').textContent = err.message || String(err);
  const items = (err.fieldViolations || []).map((v) => {
    const ctl = $(FIELD_CONTROLS[(v.field || '').split(/[.[]/)[0]] || '');
    if (ctl) ctl.setAttribute('aria-invalid', 'true');
    return el('li', null, el('code', null, v.field || '?'), ': ', v.description || '');
  });
  $('error-fields').replaceChildren(...items);
  $('error').hidden = false;
}

class ApiError extends Error {
  constructor(httpStatus, status, message, fieldViolations) {
    super(message);
    this.httpStatus = httpStatus;
    this.status = status;
    this.fieldViolations = fieldViolations || [];
  }
}

// Calls that got a 401 wait on one shared promise until a token is entered.
let tokenWaiter = null;
let tokenResolve = null;
function askToken(message) {
  if (!tokenWaiter) tokenWaiter = new Promise((resolve) => { tokenResolve = resolve; });
  $('auth-msg').textContent = message;
  $('auth').hidden = false;
  $('token').value = '';
  $('token').focus();
  setStatus('An access token is needed.');
  return tokenWaiter;
}

$('auth').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const t = $('token').value.trim();
  if (!t) return;
  setToken(t);
  $('auth').hidden = true;
  setStatus('');
  const resolve = tokenResolve;
  tokenWaiter = tokenResolve = null;
  if (!$('search-view').hidden) $('q').focus();
  resolve();
});

$('forget').addEventListener('click', () => { setToken(''); setStatus('Token forgotten.'); });

/** GET (no body) or POST (JSON body) to the API; retries after a 401 once a token is given. */
async function api(path, body) {
  for (;;) {
    const token = getToken();
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method: body === undefined ? 'GET' : 'POST', headers, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'UNAVAILABLE', `Could not reach the server (${e.message}).`);
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : {}; } catch { /* not JSON */ }
    if (res.status === 401) {
      const why = data && data.error && data.error.message ? ` (${data.error.message})` : '';
      await askToken(token ? `The token was not accepted${why}. Enter another.` : `This server needs an access token${why}.`);
      continue;
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      throw new ApiError(res.status, e.status, e.message || `HTTP ${res.status}: ${text.slice(0, 200)}`, e.fieldViolations);
    }
    if (data === null) throw new ApiError(res.status, 'INTERNAL', 'The server answered with something that is not JSON.');
    return data;
  }
}

// ---- info: the language filter ---------------------------------------------

async function loadInfo() {
  try {
    const info = await api('/v1/info');
    const langs = Object.keys(info.passagesPerLanguage || {}).filter((l) => l).sort();
    const select = $('lang');
    const want = select.dataset.want || select.value;
    select.replaceChildren(el('option', { value: '' }, 'All languages'),
      ...langs.map((l) => el('option', { value: l }, langLabel(l))));
    if (want && !langs.includes(want)) select.append(el('option', { value: want }, langLabel(want)));
    select.value = want;
    delete select.dataset.want;
    const docs = int(info.documents);
    const parts = [`${docs} document${docs === 1 ? '' : 's'}`, `${int(info.passages)} passages`];
    if (langs.length) parts.push(langs.join(', '));
    if (info.model) parts.push(`model ${info.model}`);
    $('info').textContent = parts.join(' · ');
  } catch (e) {
    if (e.httpStatus === 503) {
      $('info').textContent = 'The model and index are still loading…';
      setTimeout(loadInfo, 2000);
    } else {
      showError(e);
    }
  }
}

// ---- search ----------------------------------------------------------------

function readForm() {
  return {
    q: $('q').value.trim(),
    lang: $('lang').value,
    mode: $('mode').value,
    k: Math.min(100, Math.max(1, int($('k').value, 5))),
    filter: $('filter').value.trim(),
  };
}

// `tags=cloud,openstack author=Jane` → every key must hold one of its
// values (the API's `anyOf` conditions under `must`).
function parseFilter(text) {
  const must = [];
  for (const pair of text.split(/\s+/).filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at < 1) return { error: `"${pair}" is not key=value` };
    const values = pair.slice(at + 1).split(',').map((v) => v.trim()).filter(Boolean);
    if (!values.length) return { error: `"${pair}" has no value` };
    must.push({ key: pair.slice(0, at), anyOf: { values } });
  }
  return must.length ? { filter: { must } } : {};
}

function fillForm(p) {
  $('q').value = p.q;
  $('mode').value = p.mode;
  $('k').value = String(p.k);
  $('filter').value = p.filter || '';
  const select = $('lang');
  if ([...select.options].some((o) => o.value === p.lang)) select.value = p.lang;
  else select.dataset.want = p.lang; // the languages are not loaded yet
}

function searchHash(p) {
  const h = new URLSearchParams({ q: p.q, mode: p.mode, k: String(p.k) });
  if (p.lang) h.set('lang', p.lang);
  if (p.filter) h.set('filter', p.filter);
  return `#${h}`;
}

$('ask').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const p = readForm();
  if (!p.q) { $('q').focus(); return; }
  const hash = searchHash(p);
  if (location.hash === hash) { lastKey = null; route(); } else location.hash = hash;
});

let lastKey = null;     // the hash of the search on screen
let searchSeq = 0;      // drops answers to superseded searches
let lastCitation = -1;  // the citation opened last, to return focus to

async function runSearch(p) {
  const seq = ++searchSeq;
  const req = { query: p.q, topK: p.k, mode: MODES[p.mode] || MODES.hybrid };
  if (p.lang) req.languages = [p.lang];
  clearError();
  if (p.filter) {
    const parsed = parseFilter(p.filter);
    if (parsed.error) {
      lastKey = null;
      $('results').hidden = true;
      showError({ message: `Filter: ${parsed.error}`, fieldViolations: [] });
      $('filter').setAttribute('aria-invalid', 'true');
      setStatus('The filter could not be read.');
      return;
    }
    req.filter = parsed.filter;
  }
  setStatus('Searching…');
  $('results').setAttribute('aria-busy', 'true');
  try {
    const res = await api('/v1/search', req);
    if (seq !== searchSeq) return;
    renderResults(res, p.q);
    document.title = `${p.q} — wenda`;
  } catch (e) {
    if (seq !== searchSeq) return;
    lastKey = null;
    $('results').hidden = true;
    showError(e);
    setStatus('The search failed.');
  } finally {
    if (seq === searchSeq) $('results').removeAttribute('aria-busy');
  }
}

function renderResults(res, query) {
  const passages = res.passages || [];
  const answerable = res.answerable === true;
  const verdict = $('verdict');
  verdict.dataset.answerable = String(answerable);
  verdict.className = `verdict ${answerable ? 'yes' : 'no'}`;
  verdict.textContent = answerable
    ? 'Answer found in the documents'
    : passages.length ? 'Not in the documents — closest passages shown' : 'Not in the documents — no passages matched';
  const t = res.timings || {};
  const meta = [
    `Query language: ${langLabel(res.queryLanguage || 'und')}`,
    `${passages.length} passage${passages.length === 1 ? '' : 's'}`,
    `${num(t.totalMs).toFixed(1)} ms`,
  ];
  if (MODE_NAMES[res.mode]) meta.push(`${MODE_NAMES[res.mode]} mode`);
  $('meta').textContent = meta.join(' · ');
  $('passages').replaceChildren(...passages.map(renderPassage));
  $('results').dataset.query = query; // lets tests wait for this answer
  $('results').hidden = false;
  lastCitation = -1;
  // The verdict is announced too, but shown only once on screen.
  $('status').replaceChildren(`${passages.length} passage${passages.length === 1 ? '' : 's'} found.`,
    el('span', { class: 'visually-hidden' }, ` ${verdict.textContent}.`));
}

function renderPassage(p, i) {
  const c = p.citation || {};
  const rel = Math.min(1, Math.max(0, num(p.relevance)));
  const pct = rel > 0 && rel < 0.005 ? '<1%' : `${Math.round(rel * 100)}%`;
  const { fragment, unmatched } = markHighlights(p.text || '', p.highlights || []);
  const start = int(c.charStart);
  const end = int(c.charEnd);
  const title = c.title || c.docId || '(untitled)';
  const link = el('a', { class: 'cite', href: `#${new URLSearchParams({ doc: c.docId || '', start: String(start), end: String(end) })}` },
    el('span', { class: 'visually-hidden' }, 'Open document: '), title);
  link.addEventListener('click', () => { lastCitation = i; });
  const cite = [link];
  const add = (...parts) => cite.push(el('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '), ...parts);
  if (c.source && c.source !== title) add(el('span', { class: 'source' }, c.source));
  add(el('span', { class: 'lang' }, langLabel(c.language)));
  add(el('span', { class: 'span' }, `chars ${start}–${end}`));
  if (c.published) add(el('span', null, `published ${c.published}`));
  const url = safeUrl(c.url);
  if (url) add(el('a', { class: 'url', href: url, rel: 'noopener noreferrer', target: '_blank' }, c.url));
  return el('li', { class: 'passage' },
    el('div', { class: 'passage-head' },
      el('span', { class: 'rank' }, `#${int(p.rank, i + 1)}`),
      el('span', { class: 'relevance' },
        el('label', { for: `rel-${i}` }, `Relevance ${pct}`),
        el('meter', { id: `rel-${i}`, min: 0, max: 1, optimum: 1, value: rel }, pct)),
      el('span', { class: 'score muted' }, `score ${num(p.score).toFixed(3)}`)),
    el('p', { class: 'passage-text' }, fragment),
    unmatched.length ? el('div', { class: 'unmatched' }, el('p', { class: 'small muted' }, 'Supporting sentences:'),
      el('ul', null, ...unmatched.map((t) => el('li', null, el('mark', null, t))))) : null,
    el('p', { class: 'citation small' }, ...cite));
}

/** Wraps each highlight's text, found inside the passage text, in <mark>. */
function markHighlights(text, highlights) {
  const ranges = [];
  const unmatched = [];
  for (const h of highlights) {
    const raw = h.text || '';
    const t = raw.trim();
    if (!t) continue;
    let at = text.indexOf(raw);
    let len = raw.length;
    if (at < 0) { at = text.indexOf(t); len = t.length; }
    if (at < 0) unmatched.push(t);
    else ranges.push([at, at + len, num(h.score)]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const fragment = document.createDocumentFragment();
  let pos = 0;
  for (const [s, e, score] of ranges) {
    if (s < pos) continue; // overlaps the previous one
    if (s > pos) fragment.append(text.slice(pos, s));
    fragment.append(el('mark', { title: `support ${score.toFixed(3)}` }, text.slice(s, e)));
    pos = e;
  }
  fragment.append(text.slice(pos));
  return { fragment, unmatched };
}

// ---- document view ---------------------------------------------------------

const docCache = new Map();
let docSeq = 0;
let docFromResults = false;

async function showDocument(id, start, end) {
  const seq = ++docSeq;
  clearError();
  $('doc-title').textContent = 'Loading document…';
  $('doc-meta').replaceChildren();
  $('doc-text').replaceChildren();
  $('doc-note').hidden = true;
  setStatus('Loading the document…');
  let d;
  try {
    d = docCache.get(id) || await api(`/v1/documents/${encodeURIComponent(id)}`);
  } catch (e) {
    if (seq !== docSeq) return;
    $('doc-title').textContent = 'The document could not be loaded';
    showError(e);
    setStatus('');
    $('doc-title').focus();
    return;
  }
  if (seq !== docSeq) return;
  docCache.set(id, d);
  const doc = d.document || {};
  const chars = Array.from(d.text || ''); // offsets are code points, not UTF-16 units
  const title = doc.title || doc.id || id;
  $('doc-title').textContent = title;
  document.title = `${title} — wenda`;
  const meta = [['Source', doc.source || id], ['Language', langLabel(doc.language)]];
  if (doc.published) meta.push(['Published', doc.published]);
  meta.push(['Length', `${chars.length} characters`]);
  const valid = Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= chars.length;
  if (valid) meta.push(['Cited', `chars ${start}–${end}`]);
  $('doc-meta').replaceChildren(...meta.flatMap(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
  const pre = $('doc-text');
  if (!valid) {
    pre.append(chars.join(''));
    if (start !== null || end !== null) {
      $('doc-note').textContent = `The cited span (${start}–${end}) is not inside this document (${chars.length} characters); it may have changed.`;
      $('doc-note').hidden = false;
    }
    setStatus(`Document opened: ${title}.`);
    $('doc-title').focus();
    window.scrollTo(0, 0);
    return;
  }
  const mark = el('mark', { id: 'cited', tabindex: '-1' }, chars.slice(start, end).join(''));
  pre.append(chars.slice(0, start).join(''), mark, chars.slice(end).join(''));
  setStatus(`Document opened at the cited passage: ${title}, characters ${start} to ${end}.`);
  requestAnimationFrame(() => {
    mark.scrollIntoView({ block: 'center' });
    mark.focus({ preventScroll: true });
  });
}

function back() {
  if (docFromResults) history.back();
  else location.hash = lastKey || '';
}
$('back').addEventListener('click', back);
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && !$('doc-view').hidden) { ev.preventDefault(); back(); }
});

// ---- routing: #q=…&mode=…&k=…&lang=… (results), #doc=…&start=…&end=… (document) ----

function showView(name) {
  $('search-view').hidden = name !== 'search';
  $('doc-view').hidden = name !== 'doc';
}

function optInt(v) { return v === null || v === '' ? null : int(v, null); }

function route() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.has('doc')) {
    docFromResults = !$('search-view').hidden && lastKey !== null;
    showView('doc');
    showDocument(h.get('doc'), optInt(h.get('start')), optInt(h.get('end')));
    return;
  }
  const wasDoc = !$('doc-view').hidden;
  showView('search');
  docFromResults = false;
  if (!h.has('q')) {
    lastKey = null;
    $('results').hidden = true;
    setStatus('');
    document.title = 'wenda';
    if (wasDoc) $('q').focus();
    return;
  }
  const p = {
    q: h.get('q') || '',
    lang: h.get('lang') || '',
    filter: h.get('filter') || '',
    mode: MODES[h.get('mode')] ? h.get('mode') : 'hybrid',
    k: Math.min(100, Math.max(1, int(h.get('k'), 5))),
  };
  fillForm(p);
  const key = searchHash(p);
  if (key !== lastKey) {
    lastKey = key;
    runSearch(p);
  } else if (wasDoc) {
    // Back from a document: the results are still on screen; return to the citation.
    clearError();
    document.title = `${p.q} — wenda`;
    const links = $('passages').querySelectorAll('a.cite');
    const target = links[lastCitation] || $('q');
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: 'center' });
    setStatus('Back to the results.');
  }
}

window.addEventListener('hashchange', route);
setToken(getToken());
route();
loadInfo();
