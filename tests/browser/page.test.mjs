// Headless-browser test of the page wenda serves at `/`, against a running
// server:
//
//   node tests/browser/page.test.mjs --url http://127.0.0.1:8080 --screenshot-dir DIR [--token TOKEN]
//
// Needs `npm ci` in tests/browser (playwright-core) and a Chromium at
// $CHROMIUM or /usr/bin/chromium. Expected values (languages, answerable,
// citation text) come from the server's own API, never hard-coded, so any
// corpus that answers "Who founded OpenStack?" with a highlighted passage
// will do. Exits 0 when every step passes, 1 with the failing step otherwise.

import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    'screenshot-dir': { type: 'string' },
    token: { type: 'string' },
    question: { type: 'string', default: 'Who founded OpenStack?' },
    'off-topic': { type: 'string', default: 'What is the capital of France?' },
  },
});
if (!opts.url || !opts['screenshot-dir']) {
  console.error('usage: node page.test.mjs --url http://HOST:PORT --screenshot-dir DIR [--token TOKEN]');
  process.exit(2);
}

const BASE = opts.url.replace(/\/+$/, '');
const ORIGIN = new URL(BASE).origin;
const SHOTS = resolve(opts['screenshot-dir']);
const TOKEN = opts.token || '';
const TIMEOUT = 20_000;
const QUESTION = opts.question;
const OFF_TOPIC = opts['off-topic'];
const LAUNCH_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let current = 'setup';
const step = (name) => { current = name; };
const ok = (msg) => console.log(`ok   ${current}: ${msg}`);
function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** Calls the API directly (with the token), for the expected values. */
async function api(path, body) {
  const headers = { Accept: 'application/json' };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT),
  });
  const text = await res.text();
  check(res.status !== 401 || TOKEN, `${path}: HTTP 401: the server needs a token; pass --token`);
  check(res.ok, `${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

const searchBody = (query) => ({ query, topK: 5, mode: 'SEARCH_MODE_HYBRID' });

// Waits until the results for `query` are rendered and no search is pending.
async function waitForResults(page, query) {
  await page.waitForFunction((q) => {
    const r = document.getElementById('results');
    return r && !r.hidden && r.dataset.query === q && !r.hasAttribute('aria-busy');
  }, query, { timeout: TIMEOUT });
}

async function ask(page, query) {
  await page.locator('#q').fill('');
  await page.locator('#q').focus();
  await page.keyboard.type(query);
  await page.keyboard.press('Enter');
  await waitForResults(page, query);
}

async function verdictMatches(page, query) {
  const expected = await api('/v1/search', searchBody(query));
  const answerable = expected.answerable === true;
  const v = await page.locator('#verdict').evaluate((e) => ({ text: e.textContent, flag: e.dataset.answerable }));
  check(v.flag === String(answerable), `verdict data-answerable=${v.flag}, the API says answerable=${answerable}`);
  const want = answerable ? /^Answer found in the documents/ : /^Not in the documents/;
  check(want.test(v.text), `verdict "${v.text}" does not match answerable=${answerable}`);
  return { expected, verdict: v.text, answerable };
}

const consoleErrors = [];
const failedRequests = [];
const badResponses = [];
const foreign = [];
const unauthorized = [];

mkdirSync(SHOTS, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'wenda-page-test-'));
let context;
try {
  step('launch');
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: LAUNCH_ARGS,
    viewport: { width: 1280, height: 900 },
    timeout: TIMEOUT,
  });
  context.setDefaultTimeout(TIMEOUT);
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith('data:') && !u.startsWith('about:') && new URL(u).origin !== ORIGIN) foreign.push(u);
  });
  page.on('response', (r) => {
    if (r.status() === 401) unauthorized.push(r.url());
    else if (r.status() >= 400) badResponses.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  ok(`chromium ${context.browser()?.version() ?? ''} (fresh profile)`);

  // 1. Open the page; with a token, it must ask for it after the first 401.
  step('1 open');
  const main = await page.goto(`${BASE}/`, { waitUntil: 'load', timeout: TIMEOUT });
  check(main && main.status() === 200, `GET / returned ${main && main.status()}`);
  const csp = (await main.allHeaders())['content-security-policy'] || '';
  check(/default-src 'self'/.test(csp), `GET / has no Content-Security-Policy default-src 'self' (got "${csp}")`);
  check(await page.locator('label[for="q"]').count() === 1, 'the question input has no <label>');
  check(await page.evaluate(() => document.compatMode) === 'CSS1Compat', 'the page renders in quirks mode');
  if (TOKEN) {
    await page.locator('#token').waitFor({ state: 'visible', timeout: TIMEOUT });
    check(unauthorized.length > 0, 'the token field showed without a 401');
    check(await page.evaluate(() => document.activeElement?.id) === 'token', 'the token field is not focused');
    await page.keyboard.type(TOKEN);
    await page.keyboard.press('Enter');
    await page.locator('#auth').waitFor({ state: 'hidden', timeout: TIMEOUT });
    ok(`asked for a token after ${unauthorized.length} 401(s); token entered`);
  } else {
    ok('page loaded, CSP header present');
  }

  // 2. The language filter lists /v1/info's languages.
  step('2 languages');
  const info = await api('/v1/info');
  const langs = Object.keys(info.passagesPerLanguage || {}).sort();
  check(langs.length > 0, '/v1/info lists no languages');
  await page.waitForFunction((want) => {
    const got = [...document.querySelectorAll('#lang option')].map((o) => o.value).filter((v) => v).sort();
    return JSON.stringify(got) === JSON.stringify(want);
  }, langs, { timeout: TIMEOUT }).catch(async () => {
    const got = await page.$$eval('#lang option', (os) => os.map((o) => o.value));
    throw new Error(`language options ${JSON.stringify(got)}, expected "" plus ${JSON.stringify(langs)}`);
  });
  check(await page.locator('#lang').inputValue() === '', 'the language filter does not default to all');
  check(!(await page.locator('#auth').isVisible()), 'the token field is showing');
  ok(`filter offers all + ${langs.join(', ')}`);

  // 3. Ask by keyboard; check passages, verdict, highlights, relevance.
  step('3 ask');
  check(await page.evaluate(() => document.activeElement?.id) === 'q', 'the question input is not focused on load');
  await page.keyboard.type(QUESTION);
  await page.keyboard.press('Enter');
  await waitForResults(page, QUESTION);
  const passages = page.locator('#passages > li.passage');
  const n = await passages.count();
  check(n >= 1, 'no passages shown');
  const { expected, verdict } = await verdictMatches(page, QUESTION);
  check(n === (expected.passages || []).length, `${n} passages shown, the API returned ${(expected.passages || []).length}`);
  const marks = await page.$$eval('#passages .passage-text mark', (ms) => ms.map((m) => m.textContent));
  check(marks.length >= 1, 'no <mark> highlight inside any passage text');
  const allMarks = await page.$$eval('#passages mark', (ms) => ms.map((m) => m.textContent));
  check(allMarks.every((t) => t.trim().length > 0), 'an empty highlight <mark>');
  const rel = await page.$$eval('#passages .relevance', (rs) => rs.map((r) => r.textContent));
  check(rel.length === n && rel.every((t) => /\d+%/.test(t)), `relevance not shown on every passage: ${JSON.stringify(rel)}`);
  check(await page.locator('#passages meter').count() === n, 'a passage has no relevance meter');
  const meta = await page.locator('#meta').textContent();
  check(/ms/.test(meta) && /Query language/.test(meta), `meta line lacks timings or query language: "${meta}"`);
  const status = await page.locator('[aria-live]').first().textContent();
  check(/passage/.test(status), `the live status does not announce the results: "${status}"`);
  const first = expected.passages[0].citation;
  const href = await page.locator('#passages a.cite').first().getAttribute('href');
  const hp = new URLSearchParams(href.replace(/^#/, ''));
  check(hp.get('doc') === first.docId && hp.get('start') === String(first.charStart ?? 0) && hp.get('end') === String(first.charEnd ?? 0),
    `first citation links to ${href}, the API cites ${first.docId} ${first.charStart ?? 0}-${first.charEnd ?? 0}`);
  await page.screenshot({ path: join(SHOTS, 'results.png'), fullPage: true });
  ok(`${n} passages, ${marks.length} marks, verdict "${verdict}"; results.png`);

  // 4. Reach the first citation with Tab, open it with Enter, check the cited span.
  step('4 document');
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement === document.querySelector('#passages a.cite'));
  }
  check(reached, 'Tab never reached the first citation');
  await page.keyboard.press('Enter');
  const cited = page.locator('#doc-view mark#cited');
  await cited.waitFor({ state: 'visible', timeout: TIMEOUT });
  check(await page.locator('#search-view').isHidden(), 'the results are still showing behind the document');
  const doc = await api(`/v1/documents/${encodeURIComponent(first.docId)}`);
  const want = Array.from(doc.text).slice(Number(first.charStart ?? 0), Number(first.charEnd ?? 0)).join('');
  const got = await cited.textContent();
  check(got === want, `mark#cited text differs from the document's code points ${first.charStart ?? 0}-${first.charEnd ?? 0}:\n  got:  ${JSON.stringify(got.slice(0, 120))}\n  want: ${JSON.stringify(want.slice(0, 120))}`);
  const whole = await page.locator('#doc-text').textContent();
  check(whole === doc.text, 'the document view does not show the whole original text');
  const title = await page.locator('#doc-title').textContent();
  check(title === (doc.document.title || doc.document.id), `document title "${title}"`);
  await page.waitForFunction(() => {
    const r = document.getElementById('cited').getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.top < window.innerHeight && r.bottom > 0;
  }, null, { timeout: TIMEOUT }).catch(async () => {
    const box = await cited.boundingBox();
    throw new Error(`mark#cited is not in the viewport: ${JSON.stringify(box)}`);
  });
  check(await page.evaluate(() => document.activeElement?.id) === 'cited', 'the cited span is not focused');
  await page.screenshot({ path: join(SHOTS, 'document.png') });
  ok(`cited span (${want.length} chars of ${first.docId}) matches, in view, focused; document.png`);

  step('4b back');
  await page.locator('#back').focus();
  await page.keyboard.press('Enter');
  await page.locator('#search-view').waitFor({ state: 'visible', timeout: TIMEOUT });
  await page.waitForFunction(() => document.activeElement === document.querySelector('#passages a.cite'), null, { timeout: TIMEOUT });
  check(await page.locator('#passages > li.passage').count() === n, 'the results changed after Back');
  ok('Back to results returns focus to the citation');

  // 5. A metadata filter typed into the form: here on the document id,
  // which every document has; the page shows what the API returns for it.
  step('5 filter');
  await page.locator('#filter').fill(`id=${first.docId}`);
  await page.locator('#q').focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction((doc) => {
    const links = [...document.querySelectorAll('#passages a.cite')];
    const r = document.getElementById('results');
    return links.length > 0 && !r.hasAttribute('aria-busy')
      && links.every((a) => new URLSearchParams(a.getAttribute('href').slice(1)).get('doc') === doc);
  }, first.docId, { timeout: TIMEOUT });
  const filtered = await api('/v1/search', { ...searchBody(QUESTION), filter: { must: [{ key: 'id', anyOf: { values: [first.docId] } }] } });
  const shown = await page.locator('#passages > li.passage').count();
  check(shown === (filtered.passages || []).length, `${shown} filtered passages shown, the API returned ${(filtered.passages || []).length}`);
  check(new URLSearchParams(new URL(page.url()).hash.slice(1)).get('filter') === `id=${first.docId}`, 'the filter is not kept in the URL');
  await page.locator('#filter').fill('nonsense');
  await page.locator('#q').focus();
  await page.keyboard.press('Enter');
  await page.locator('#error').waitFor({ state: 'visible', timeout: TIMEOUT });
  check(await page.locator('#filter').getAttribute('aria-invalid') === 'true', 'a bad filter is not marked invalid');
  await page.locator('#filter').fill('');
  await ask(page, QUESTION);
  check(await page.locator('#passages > li.passage').count() === n, 'clearing the filter does not bring the results back');
  ok(`id filter: ${shown} passages, all of ${first.docId}; a bad filter is reported`);

  // 6. Phone viewport: no horizontal scroll, in the results and in a document.
  step('6 phone');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload({ waitUntil: 'load' });
  await waitForResults(page, QUESTION);
  const widths = async () => page.evaluate(() => ({ sw: document.documentElement.scrollWidth, iw: window.innerWidth }));
  let w = await widths();
  check(w.sw <= w.iw, `results scroll sideways on a phone: scrollWidth ${w.sw} > innerWidth ${w.iw}`);
  await page.screenshot({ path: join(SHOTS, 'phone.png') });
  // Open the citation deepest into its document, so the view has to scroll to it.
  const cites = expected.passages.map((p) => p.citation);
  const deep = cites.reduce((best, c, i) => (Number(c.charStart ?? 0) > Number(cites[best].charStart ?? 0) ? i : best), 0);
  const dc = cites[deep];
  await page.locator('#passages a.cite').nth(deep).click();
  await page.locator('#doc-view mark#cited').waitFor({ state: 'visible', timeout: TIMEOUT });
  const deepDoc = await api(`/v1/documents/${encodeURIComponent(dc.docId)}`);
  const deepWant = Array.from(deepDoc.text).slice(Number(dc.charStart ?? 0), Number(dc.charEnd ?? 0)).join('');
  check(await page.locator('mark#cited').textContent() === deepWant, `mark#cited differs from ${dc.docId} code points ${dc.charStart}-${dc.charEnd}`);
  await page.waitForFunction(() => {
    const r = document.getElementById('cited').getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.top < window.innerHeight && r.bottom > 0;
  }, null, { timeout: TIMEOUT }).catch(async () => {
    throw new Error(`mark#cited (chars ${dc.charStart}-${dc.charEnd}) is not in the phone viewport: ${JSON.stringify(await page.locator('mark#cited').boundingBox())}`);
  });
  w = await widths();
  check(w.sw <= w.iw, `the document scrolls sideways on a phone: scrollWidth ${w.sw} > innerWidth ${w.iw}`);
  await page.screenshot({ path: join(SHOTS, 'phone-document.png') });
  await page.goBack();
  await page.locator('#search-view').waitFor({ state: 'visible', timeout: TIMEOUT });
  ok(`scrollWidth ${w.sw} <= innerWidth ${w.iw}; chars ${dc.charStart}-${dc.charEnd} of ${dc.docId} in view; phone.png, phone-document.png`);

  // 7. An off-topic question: the verdict follows the API's `answerable`.
  step('7 off-topic');
  await page.setViewportSize({ width: 1280, height: 900 });
  await ask(page, OFF_TOPIC);
  const off = await verdictMatches(page, OFF_TOPIC);
  await page.screenshot({ path: join(SHOTS, 'off-topic.png') });
  ok(`answerable=${off.answerable}: "${off.verdict}"; off-topic.png`);

  // 8. Nothing failed, nothing left the origin.
  step('8 network');
  const benign = (t) => TOKEN && /status of 401/.test(t);
  const errors = consoleErrors.filter((t) => !benign(t));
  check(errors.length === 0, `console errors:\n  ${errors.join('\n  ')}`);
  check(failedRequests.length === 0, `failed requests:\n  ${failedRequests.join('\n  ')}`);
  check(badResponses.length === 0, `error responses:\n  ${badResponses.join('\n  ')}`);
  check(foreign.length === 0, `requests to other origins:\n  ${foreign.join('\n  ')}`);
  check(TOKEN ? unauthorized.length > 0 : unauthorized.length === 0, `unexpected 401s: ${unauthorized.join(', ')}`);
  ok(`no console errors, failed requests or foreign origins${TOKEN ? `; ${unauthorized.length} expected 401(s)` : ''}`);

  console.log(`PASS page test against ${BASE}; screenshots in ${SHOTS}`);
} catch (e) {
  console.error(`FAIL ${current}: ${e.message}`);
  process.exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
