// Opens a run folder's report.html in headless Chromium (desktop 1280 px wide, light scheme; phone
// 375 px wide, dark scheme) and fails on a console error, an uncaught exception, a request for
// anything but the file itself (the report must be self-contained), a chart without a drawn
// line, or a page wider than its viewport. Saves full-page screenshots and prints what the page
// shows (title, section headings, chart titles and their point counts). Run by scripts/check-report.
//
//   node --experimental-websocket scripts/check-report.mjs --report RUN/report.html
//        [--out '/tmp/finch-report-*.png'] [--chromium chromium]
import { writeFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launchChromium, CDP } from './lib/chromium-cdp.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  if (!process.argv[i].startsWith('--')) fail(`unexpected argument ${process.argv[i]}`);
  args[process.argv[i].slice(2)] = process.argv[i + 1];
}
let closeChromium = null;
function fail(message) {
  console.error(`check-report: FAIL: ${message}`);
  if (closeChromium) closeChromium();
  process.exit(1);
}
if (!args.report) fail('--report RUN_DIR/report.html is required');
const reportPath = resolve(args.report);
if (!existsSync(reportPath)) fail(`${reportPath}: no such file`);
const reportURL = pathToFileURL(reportPath).href;
const outPattern = args.out || '/tmp/finch-report-*.png';
if (typeof WebSocket === 'undefined') fail('this Node has no WebSocket: run it with --experimental-websocket (Node 20) or use Node 22+');

async function check(cdp, viewport) {
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId: s } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  const problems = [], requests = [];
  cdp.on('Runtime.consoleAPICalled', s, (p) => {
    if (p.type === 'error' || p.type === 'assert' || p.type === 'warning') {
      problems.push(`console.${p.type}: ${p.args.map((a) => a.value ?? a.description ?? a.type).join(' ')}`);
    }
  });
  cdp.on('Runtime.exceptionThrown', s, (p) => {
    const d = p.exceptionDetails;
    problems.push(`uncaught exception: ${(d.exception && d.exception.description) || d.text} (line ${d.lineNumber + 1})`);
  });
  cdp.on('Log.entryAdded', s, (p) => { if (p.entry.level === 'error' || p.entry.level === 'warning') problems.push(`${p.entry.source}: ${p.entry.text}`); });
  cdp.on('Network.requestWillBeSent', s, (p) => requests.push(p.request.url));
  await Promise.all([cdp.send('Page.enable', {}, s), cdp.send('Runtime.enable', {}, s), cdp.send('Log.enable', {}, s), cdp.send('Network.enable', {}, s)]);
  await cdp.send('Emulation.setDeviceMetricsOverride', { width: viewport.width, height: viewport.height, deviceScaleFactor: 1, mobile: viewport.mobile }, s);
  await cdp.send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: viewport.scheme }] }, s);
  const loaded = cdp.once('Page.loadEventFired', s, 30_000);
  const nav = await cdp.send('Page.navigate', { url: reportURL }, s);
  if (nav.errorText) fail(`${viewport.name}: loading ${reportURL} failed: ${nav.errorText}`);
  await loaded;
  await new Promise((r) => setTimeout(r, 300));
  const { result } = await cdp.send('Runtime.evaluate', {
    returnByValue: true,
    expression: `(() => {
      const charts = [...document.querySelectorAll('svg.chart')].map((svg) => {
        const title = (svg.querySelector('title') || {}).textContent || svg.getAttribute('aria-label') || '';
        const lines = [...svg.querySelectorAll('polyline, path')].filter((e) => {
          const pts = e.getAttribute('points') || e.getAttribute('d') || '';
          return (pts.match(/-?\\d+(\\.\\d+)?[ ,]-?\\d+(\\.\\d+)?/g) || []).length >= 2;
        });
        const box = svg.getBoundingClientRect();
        return { title: title.trim(), lines: lines.length, width: Math.round(box.width), height: Math.round(box.height) };
      });
      return {
        title: document.title,
        headings: [...document.querySelectorAll('h1, h2')].map((h) => h.tagName + ' ' + h.textContent.trim()),
        tables: document.querySelectorAll('table').length,
        charts,
        scrollWidth: document.documentElement.scrollWidth,
        // The outermost elements that stick out of the viewport, to name the culprit.
        wide: [...document.querySelectorAll('body, body *')].filter((e) => e.getBoundingClientRect().right > ${viewport.width} + 1
            && !(e.parentElement && e.parentElement.getBoundingClientRect().right > ${viewport.width} + 1))
          .slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '')
            + ' (' + Math.round(e.getBoundingClientRect().right) + ' px)'),
        height: document.documentElement.scrollHeight,
      };
    })()`,
  }, s);
  const page = result.value;
  if (problems.length) fail(`${viewport.name}: console errors or exceptions:\n  ${problems.join('\n  ')}`);
  const external = requests.filter((u) => u !== reportURL && !u.startsWith('data:'));
  if (external.length) fail(`${viewport.name}: the report requested other resources (it must be self-contained): ${external.join(', ')}`);
  if (!page.charts.length) fail(`${viewport.name}: no charts (svg.chart) in the report`);
  const empty = page.charts.filter((c) => c.lines === 0 || c.width < 100 || c.height < 60);
  if (empty.length) fail(`${viewport.name}: charts without a drawn line or too small: ${JSON.stringify(empty)}`);
  if (page.scrollWidth > viewport.width + 1) fail(`${viewport.name}: the page is ${page.scrollWidth} px wide in a ${viewport.width} px viewport: ${page.wide.join(', ')}`);
  await cdp.send('Emulation.setDeviceMetricsOverride', { width: viewport.width, height: Math.min(page.height, 16384), deviceScaleFactor: 1, mobile: viewport.mobile }, s);
  const shot = await cdp.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, s);
  const path = outPattern.includes('*') ? outPattern.replace('*', viewport.name) : `${outPattern}-${viewport.name}.png`;
  writeFileSync(path, Buffer.from(shot.data, 'base64'));
  await cdp.send('Target.closeTarget', { targetId });
  return { ...page, path };
}

const { wsURL, close } = await launchChromium(args.chromium || 'chromium', fail);
closeChromium = close;
const cdp = new CDP(wsURL);
await cdp.open();
const pages = [];
for (const viewport of [{ name: 'desktop', width: 1280, height: 800, mobile: false, scheme: 'light' },
                        { name: 'phone', width: 375, height: 740, mobile: true, scheme: 'dark' }]) {
  pages.push(await check(cdp, viewport));
}
close();
const d = pages[0];
console.log(`title: ${d.title}`);
console.log(`sections: ${d.headings.join(' | ')}`);
console.log(`charts (${d.charts.length}): ${d.charts.map((c) => `${c.title || '(untitled)'} [${c.lines} line(s), ${c.width}x${c.height}]`).join('; ')}`);
console.log(`tables: ${d.tables}; page height ${d.height} px at 1280 px, ${pages[1].height} px at 375 px`);
console.log(`check-report: OK: no console errors, no requests, screenshots: ${pages.map((p) => p.path).join(' ')}`);
process.exit(0);
