// Headless Chromium and a minimal DevTools-protocol client, shared by the page checks
// (scripts/check-chat-page.mjs, scripts/check-report.mjs). Needs Node 20 with
// --experimental-websocket (Node 22 has WebSocket built in).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/// Starts headless Chromium with a throw-away profile. Resolves to { wsURL, close }; calls
/// `fail(message)` (which must not return) if Chromium cannot start.
export async function launchChromium(chromiumPath, fail) {
  const profile = mkdtempSync(join(tmpdir(), 'finch-chromium-'));
  const flags = [
    '--headless=new', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-extensions', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-default-apps', '--disable-dev-shm-usage', '--mute-audio',
    '--hide-scrollbars', '--password-store=basic', '--use-mock-keychain',
    `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank',
  ];
  // Chromium refuses to run as root with its sandbox on.
  if (typeof process.getuid === 'function' && process.getuid() === 0) flags.unshift('--no-sandbox');
  const browser = spawn(chromiumPath, flags, { stdio: ['ignore', 'ignore', 'pipe'] });
  const close = () => {
    if (browser.exitCode === null) browser.kill('SIGKILL');
    try { rmSync(profile, { recursive: true, force: true }); } catch { /* ignore */ }
  };
  let stderr = '';
  const wsURL = await new Promise((resolve) => {
    let started = false;
    const timer = setTimeout(() => { close(); fail(`chromium printed no DevTools address within 30 s:\n${stderr.slice(-2000)}`); }, 30_000);
    browser.on('error', (e) => { close(); fail(`cannot start ${chromiumPath}: ${e.message}`); });
    browser.on('exit', (code) => { if (!started) { clearTimeout(timer); close(); fail(`chromium exited (${code}) before starting:\n${stderr.slice(-2000)}`); } });
    browser.stderr.on('data', (d) => {
      stderr += d;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (m && !started) { started = true; clearTimeout(timer); resolve(m[1]); }
    });
  });
  return { wsURL, close };
}

/// One DevTools websocket: send(method, params, session), on/once for events.
export class CDP {
  constructor(url) {
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = [];
    this.ws = new WebSocket(url);
    this.ws.addEventListener('message', (e) => this.onMessage(JSON.parse(String(e.data))));
    this.ws.addEventListener('close', () => {
      for (const { reject } of this.pending.values()) reject(new Error('DevTools connection closed'));
      this.pending.clear();
    });
  }
  open() {
    return new Promise((resolve, reject) => {
      this.ws.addEventListener('open', resolve, { once: true });
      this.ws.addEventListener('error', () => reject(new Error('cannot connect to the DevTools websocket')), { once: true });
    });
  }
  onMessage(msg) {
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}${msg.error.data ? ' (' + msg.error.data + ')' : ''}`));
      else p.resolve(msg.result);
      return;
    }
    for (const l of this.listeners) if (l.method === msg.method && l.session === msg.sessionId) l.fn(msg.params);
  }
  send(method, params = {}, session) {
    const id = this.nextId++;
    const msg = { id, method, params };
    if (session) msg.sessionId = session;
    this.ws.send(JSON.stringify(msg));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, method }));
  }
  on(method, session, fn) { this.listeners.push({ method, session, fn }); }
  once(method, session, timeoutMs) {
    return new Promise((resolve, reject) => {
      const l = { method, session, fn: (p) => { this.listeners.splice(this.listeners.indexOf(l), 1); clearTimeout(t); resolve(p); } };
      const t = setTimeout(() => { this.listeners.splice(this.listeners.indexOf(l), 1); reject(new Error(`no ${method} within ${timeoutMs} ms`)); }, timeoutMs);
      this.listeners.push(l);
    });
  }
}
