// Drives headless Chromium through the DevTools protocol against a running `finch serve`:
// loads the chat page at desktop size in the light color scheme and at phone size in the dark
// one, sends a message (a click on Send, then the Enter key), waits for the streamed reply,
// checks it, stops a second reply midway, and saves screenshots. Run by scripts/check-chat-page (which starts the server); needs Node 20 with
// --experimental-websocket (Node 22 has WebSocket built in).
//
//   node --experimental-websocket scripts/check-chat-page.mjs --url http://127.0.0.1:PORT \
//        [--out '/tmp/finch-chat-*.png'] [--max-tokens 100] [--chromium chromium] [--api-key KEY]
//        [--server-pid PID --server-log FILE]
import { writeFileSync, readFileSync } from 'node:fs';
import { launchChromium, CDP } from './lib/chromium-cdp.mjs';

const args = parseArgs(process.argv.slice(2));
const base = (args.url || '').replace(/\/$/, '');
const outPattern = args.out || '/tmp/finch-chat-*.png';
const chromiumPath = args.chromium || 'chromium';
const apiKey = args['api-key'] || '';
const serverPid = args['server-pid'] ? Number(args['server-pid']) : 0;
const serverLog = args['server-log'] || '';
const PROMPT = args.prompt || 'Write a short poem about a finch in the morning.';
const MAX_TOKENS = Number(args['max-tokens'] || 100);
const REPLY_TIMEOUT_MS = 240_000;

if (!base) fail('--url http://HOST:PORT of the running server is required');
if (typeof WebSocket === 'undefined') fail('this Node has no WebSocket: run it with --experimental-websocket (Node 20) or use Node 22+');

function parseArgs(list) {
  const out = {};
  for (let i = 0; i < list.length; i++) {
    const a = list[i];
    if (!a.startsWith('--')) fail(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else { out[a.slice(2)] = list[i + 1]; i++; }
  }
  return out;
}

function screenshotPath(name) {
  if (outPattern.includes('*')) return outPattern.replace('*', name);
  return outPattern.endsWith('.png') ? outPattern.slice(0, -4) + '-' + name + '.png' : outPattern + '-' + name + '.png';
}

let closeChromium = null;
function cleanup() {
  if (closeChromium) closeChromium();
}

function fail(message) {
  console.error(`check-chat-page: FAIL: ${message}`);
  if (serverLog) {
    try {
      const log = readFileSync(serverLog, 'utf8').trim().split('\n').slice(-15).join('\n');
      if (log) console.error(`--- last lines of the server log ---\n${log}`);
    } catch { /* no log */ }
  }
  cleanup();
  process.exit(1);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function serverAlive() {
  if (!serverPid) return true;
  try { process.kill(serverPid, 0); return true; } catch { return false; }
}

async function waitForServer() {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (!serverAlive()) fail('the server exited before answering /health');
    try {
      const res = await fetch(base + '/health');
      if (res.ok) return;
    } catch { /* not listening yet */ }
    await sleep(250);
  }
  fail(`no answer from ${base}/health within 180 s`);
}

async function servedModel() {
  const res = await fetch(base + '/v1/models', { headers: apiKey ? { Authorization: 'Bearer ' + apiKey } : {} });
  if (!res.ok) fail(`GET /v1/models answered ${res.status}: ${await res.text()}`);
  const body = await res.json();
  const id = body && body.data && body.data[0] && body.data[0].id;
  if (typeof id !== 'string' || !id) fail(`GET /v1/models has no data[0].id: ${JSON.stringify(body)}`);
  return id;
}

// ---- one page at one screen size ----
async function openPage(cdp, viewport) {
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId: s } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  const problems = [];
  const requests = [];
  cdp.on('Runtime.consoleAPICalled', s, (p) => {
    if (p.type === 'error' || p.type === 'assert') {
      problems.push(`console.${p.type}: ${p.args.map((a) => a.value ?? a.description ?? a.type).join(' ')}`);
    }
  });
  cdp.on('Runtime.exceptionThrown', s, (p) => {
    const d = p.exceptionDetails;
    problems.push(`uncaught exception: ${(d.exception && d.exception.description) || d.text} (line ${d.lineNumber + 1})`);
  });
  cdp.on('Log.entryAdded', s, (p) => { if (p.entry.level === 'error') problems.push(`${p.entry.source}: ${p.entry.text} ${p.entry.url || ''}`.trim()); });
  cdp.on('Network.requestWillBeSent', s, (p) => requests.push(p.request.url));
  await Promise.all([
    cdp.send('Page.enable', {}, s), cdp.send('Runtime.enable', {}, s),
    cdp.send('Log.enable', {}, s), cdp.send('Network.enable', {}, s),
  ]);
  await cdp.send('Emulation.setDeviceMetricsOverride', {
    width: viewport.width, height: viewport.height, deviceScaleFactor: 1, mobile: viewport.mobile,
  }, s);
  if (viewport.mobile) await cdp.send('Emulation.setTouchEmulationEnabled', { enabled: true, maxTouchPoints: 5 }, s);
  await cdp.send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: viewport.scheme }] }, s);
  if (apiKey) {
    // As if typed in earlier: the page reads the key from local storage before its first request.
    await cdp.send('Page.addScriptToEvaluateOnNewDocument', {
      source: `localStorage.setItem('finch.apiKey', ${JSON.stringify(apiKey)});`,
    }, s);
  }
  const loaded = cdp.once('Page.loadEventFired', s, 30_000);
  const nav = await cdp.send('Page.navigate', { url: base + '/' }, s);
  if (nav.errorText) fail(`${viewport.name}: loading ${base}/ failed: ${nav.errorText}`);
  await loaded;

  const page = {
    s, problems, requests, viewport,
    async eval(expression) {
      const r = await cdp.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, s);
      if (r.exceptionDetails) throw new Error(`evaluating ${expression.slice(0, 80)}: ${r.exceptionDetails.exception?.description || r.exceptionDetails.text}`);
      return r.result.value;
    },
    async waitFor(expression, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const v = await this.eval(expression);
        if (v) return v;
        if (Date.now() > deadline) fail(`${viewport.name}: timed out after ${timeoutMs / 1000} s waiting for ${what}`);
        if (!serverAlive()) fail(`${viewport.name}: the server exited while waiting for ${what}`);
        await sleep(50);
      }
    },
    async click(selector) {
      const box = await this.eval(`(() => { const e = document.querySelector(${JSON.stringify(selector)});
        if (!e) return null; const r = e.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) return null; return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()`);
      if (!box) fail(`${viewport.name}: ${selector} is not visible, cannot click it`);
      for (const type of ['mousePressed', 'mouseReleased']) {
        await cdp.send('Input.dispatchMouseEvent', { type, x: box.x, y: box.y, button: 'left', clickCount: 1 }, s);
      }
    },
    async pressEnter() {
      await cdp.send('Input.dispatchKeyEvent', { type: 'keyDown', key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13, text: '\r' }, s);
      await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key: 'Enter', code: 'Enter', windowsVirtualKeyCode: 13 }, s);
    },
    async type(text) { await cdp.send('Input.insertText', { text }, s); },
    async screenshot(name) {
      const { data } = await cdp.send('Page.captureScreenshot', { format: 'png' }, s);
      const path = screenshotPath(name);
      writeFileSync(path, Buffer.from(data, 'base64'));
      return path;
    },
    async close() { await cdp.send('Target.closeTarget', { targetId }); },
  };
  return page;
}

const LAST_REPLY = `(() => { const m = document.querySelectorAll('#messages .msg.assistant');
  const last = m[m.length - 1]; return last ? last.querySelector('.content').textContent : ''; })()`;
const LAST_META = `(() => { const m = document.querySelectorAll('#messages .msg.assistant');
  const last = m[m.length - 1]; return last ? last.querySelector('.meta').textContent : ''; })()`;
const STATE = `document.body.getAttribute('data-state')`;
const ERROR = `(() => { const e = document.getElementById('error'); return e.hidden ? '' : e.textContent; })()`;

// Sends what is in the prompt box (by clicking Send or pressing Enter) and waits for the reply,
// sampling the text while it streams.
async function sendAndWait(page, how) {
  const before = await page.eval(`document.querySelectorAll('#messages .msg.assistant').length`);
  if (how === 'click') await page.click('#send'); else await page.pressEnter();
  await page.waitFor(`document.querySelectorAll('#messages .msg.assistant').length > ${before} || !!(${ERROR})`, 10_000, 'the reply bubble');
  const partials = new Set();
  const t0 = Date.now();
  for (;;) {
    const [state, text] = await Promise.all([page.eval(STATE), page.eval(LAST_REPLY)]);
    if (state === 'idle') break;
    if (text) partials.add(text.length);
    if (Date.now() - t0 > REPLY_TIMEOUT_MS) fail(`${page.viewport.name}: the reply did not finish within ${REPLY_TIMEOUT_MS / 1000} s`);
    if (!serverAlive()) fail(`${page.viewport.name}: the server exited while streaming`);
    await sleep(40);
  }
  const error = await page.eval(ERROR);
  if (error) fail(`${page.viewport.name}: the page shows an error: ${error}`);
  const reply = await page.eval(LAST_REPLY);
  const meta = await page.eval(LAST_META);
  return { reply, meta, partials: [...partials].filter((n) => n < reply.length).length, seconds: (Date.now() - t0) / 1000 };
}

function checkClean(page) {
  if (page.problems.length) fail(`${page.viewport.name}: console errors or exceptions:\n  ${page.problems.join('\n  ')}`);
  const origin = new URL(base).origin;
  const external = page.requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith('data:') && u !== 'about:blank');
  if (external.length) fail(`${page.viewport.name}: the page requested resources outside the server: ${external.join(', ')}`);
}

async function run() {
  await waitForServer();
  const model = await servedModel();
  const { wsURL, close } = await launchChromium(chromiumPath, fail);
  closeChromium = close;
  const cdp = new CDP(wsURL);
  await cdp.open();
  const shots = [];
  const viewports = [
    { name: 'desktop', width: 1280, height: 800, mobile: false, send: 'click', scheme: 'light' },
    { name: 'phone', width: 375, height: 740, mobile: true, send: 'enter', scheme: 'dark' },
  ];
  for (const viewport of viewports) {
    const page = await openPage(cdp, viewport);
    const header = await page.waitFor(`(() => { const t = document.getElementById('model-name').textContent;
      return t && t !== 'connecting…' ? t : ''; })()`, 30_000, 'the model name in the header');
    if (header !== model) fail(`${viewport.name}: the header shows "${header}", GET /v1/models serves "${model}"`);

    const settingsShown = `getComputedStyle(document.getElementById('settings')).display !== 'none'`;
    if (viewport.mobile) {
      const width = await page.eval('document.documentElement.scrollWidth');
      if (width > viewport.width) fail(`phone: the page is ${width} px wide, wider than the ${viewport.width} px screen`);
      if (await page.eval(settingsShown)) fail('phone: the settings panel should be collapsed on a phone-sized screen');
      await page.click('#settings-toggle');
      if (!(await page.eval(settingsShown))) fail('phone: the Settings button did not open the settings panel');
      shots.push(await page.screenshot('phone-settings'));
      await page.click('#settings-toggle');
      if (await page.eval(settingsShown)) fail('phone: the Settings button did not close the settings panel');
    } else if (!(await page.eval(settingsShown))) {
      fail('desktop: the settings panel should be visible at 1280 px');
    }
    if (!viewport.mobile) {
      // Typed into the Max tokens field (kept in local storage, so the phone page has it too).
      await page.click('#max-tokens');
      await page.eval(`document.getElementById('max-tokens').select()`);
      await page.type(String(MAX_TOKENS));
    }

    await page.click('#prompt');
    await page.type(PROMPT);
    const r = await sendAndWait(page, viewport.send);
    if (!r.reply.trim()) fail(`${viewport.name}: the streamed reply is empty (meta: "${r.meta}")`);
    if (!/tokens\/s/.test(r.meta)) fail(`${viewport.name}: no tokens/s shown after the reply (meta: "${r.meta}")`);
    const counted = /(\d+) tokens? ·/.exec(r.meta);
    if (!counted || Number(counted[1]) > MAX_TOKENS) fail(`${viewport.name}: the reply should have at most ${MAX_TOKENS} tokens (meta: "${r.meta}")`);
    const userText = await page.eval(`document.querySelector('#messages .msg.user .content').textContent`);
    if (userText !== PROMPT) fail(`${viewport.name}: the user bubble shows "${userText}", typed "${PROMPT}"`);
    if (await page.eval(`document.getElementById('prompt').value`)) fail(`${viewport.name}: the prompt box was not cleared after sending`);
    const words = r.reply.trim().split(/\s+/).length;
    if (words >= 12 && r.partials === 0) fail(`${viewport.name}: the reply (${words} words) appeared at once, not streamed`);
    console.log(`${viewport.name}: reply of ${r.reply.length} characters in ${r.seconds.toFixed(1)} s, seen growing ${r.partials} times; "${r.meta}"`);
    console.log(`${viewport.name}: reply starts: ${JSON.stringify(r.reply.slice(0, 100))}`);
    shots.push(await page.screenshot(viewport.name));

    if (!viewport.mobile) {
      // Stop midway: the partial reply stays, marked stopped, and the page is ready again.
      await page.click('#prompt');
      await page.type('Tell me a long story about a finch who learns to sing.');
      await page.click('#send');
      await page.waitFor(`${LAST_REPLY.replace('textContent', 'textContent.length')} > 0 && document.querySelectorAll('#messages .msg.assistant').length === 2`, 60_000, 'the first tokens of the second reply');
      await page.click('#stop');
      await page.waitFor(`${STATE} === 'idle'`, 10_000, 'the page to be idle after Stop');
      const meta = await page.eval(LAST_META);
      const partial = await page.eval(LAST_REPLY);
      if (!partial.trim()) fail('desktop: the partial reply was dropped after Stop');
      if (!/stopped/.test(meta)) fail(`desktop: after Stop the reply is not marked (meta: "${meta}")`);
      console.log(`desktop: stopped a second reply after ${partial.length} characters; "${meta}"`);
      // The server must be free for the next request right away.
      await page.click('#prompt');
      await page.type('Say hello.');
      const again = await sendAndWait(page, 'click');
      if (!again.reply.trim()) fail('desktop: the reply after a stopped one is empty');
      console.log(`desktop: the next reply after Stop came in ${again.seconds.toFixed(1)} s`);
    }
    checkClean(page);
    await page.close();
  }
  console.log(`check-chat-page: OK, screenshots: ${shots.join(' ')}`);
  cleanup();
  process.exit(0);
}

process.on('SIGINT', () => fail('interrupted'));
process.on('SIGTERM', () => fail('terminated'));
run().catch((e) => fail(e && e.stack ? e.stack : String(e)));
