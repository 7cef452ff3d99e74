/// The web chat page that `finch serve` answers at `/`.
///
/// One self-contained HTML document: styles and scripts are inline and it loads nothing from the
/// network except the server's own API (`GET /v1/models`, `POST /v1/chat/completions` with
/// `stream: true`), so it works on a machine without internet access. It keeps the conversation
/// in the browser (the API is stateless), streams replies token by token from the SSE chunks,
/// renders them as Markdown with its own escaping renderer, and lays itself out for a phone as
/// well as a desktop.
///
/// The script with `id="finch-core"` holds the parts that do not touch the DOM (HTML escaping,
/// the Markdown renderer, the SSE line parser) and runs unchanged under Node, which is how
/// `ChatPageTests` checks that model output can never inject markup.
public enum ChatPage {
    /// The whole page, UTF-8 HTML, served with `Content-Type: text/html; charset=utf-8`.
    public static let html: String = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="color-scheme" content="light dark">
<title>Finch chat</title>
<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Ccircle cx='16' cy='16' r='15' fill='%23e0a526'/%3E%3Cpath d='M7 19c4-1 7-5 9-9 2 3 6 4 9 4-2 5-7 8-12 8l-4 4 1-5z' fill='%23fff'/%3E%3Ccircle cx='20' cy='13' r='1.5' fill='%23333'/%3E%3C/svg%3E">
<style>
:root {
  --bg: #f6f6f7; --panel: #ffffff; --text: #1c1c1f; --muted: #676772; --border: #d9d9df;
  --accent: #2d6bd8; --accent-text: #ffffff; --user: #2d6bd8; --user-text: #ffffff;
  --assistant: #ffffff; --code-bg: #f0f0f3; --inline-code: #ececf1;
  --danger: #b3261e; --danger-bg: #fdecea; --shadow: 0 1px 2px rgba(0,0,0,.06);
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #151619; --panel: #1e2024; --text: #e7e7ea; --muted: #9d9da8; --border: #33363c;
    --accent: #7aa5ff; --accent-text: #0d1422; --user: #2f5fb8; --user-text: #f2f5ff;
    --assistant: #1e2024; --code-bg: #0f1013; --inline-code: #2a2d33;
    --danger: #ff8c82; --danger-bg: #3a1d1b; --shadow: none;
  }
}
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body {
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  background: var(--bg); color: var(--text);
  display: flex; flex-direction: column; height: 100vh; height: 100dvh;
}
button, input, textarea, select { font: inherit; color: inherit; }
button {
  cursor: pointer; border: 1px solid var(--border); background: var(--panel);
  border-radius: 8px; padding: 6px 12px; line-height: 1.3;
}
button:hover { border-color: var(--muted); }
button:disabled { opacity: .5; cursor: default; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.visually-hidden {
  position: absolute !important; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; padding: 0; margin: -1px;
}
header {
  display: flex; align-items: center; gap: 10px; padding: 8px 14px;
  border-bottom: 1px solid var(--border); background: var(--panel); min-height: 52px;
}
.brand { display: flex; align-items: center; gap: 8px; font-weight: 650; font-size: 17px; }
.brand svg { width: 26px; height: 26px; flex: none; }
#model-name {
  color: var(--muted); font-size: 13px; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; min-width: 0; flex: 1;
}
#settings-toggle { display: none; }
.layout { flex: 1; display: flex; min-height: 0; }
#settings {
  width: 280px; flex: none; padding: 14px; overflow-y: auto;
  border-right: 1px solid var(--border); background: var(--panel);
  display: flex; flex-direction: column; gap: 12px;
}
#settings h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 0; }
.field { display: flex; flex-direction: column; gap: 4px; }
.field label { font-size: 13px; font-weight: 600; }
.field .hint { font-size: 12px; color: var(--muted); }
.field input, .field textarea {
  width: 100%; border: 1px solid var(--border); border-radius: 8px; padding: 7px 9px;
  background: var(--bg);
}
.field textarea { resize: vertical; min-height: 84px; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
main { flex: 1; display: flex; flex-direction: column; min-width: 0; }
#messages { flex: 1; overflow-y: auto; padding: 18px 14px 8px; }
.empty { max-width: 520px; margin: 12vh auto 0; text-align: center; color: var(--muted); }
.empty strong { color: var(--text); }
.msg { display: flex; max-width: 860px; margin: 0 auto 14px; }
.msg.user { justify-content: flex-end; }
.bubble {
  max-width: 88%; padding: 9px 13px; border-radius: 14px; overflow-wrap: anywhere; min-width: 0;
  box-shadow: var(--shadow);
}
.msg.user .bubble { background: var(--user); color: var(--user-text); border-bottom-right-radius: 4px; white-space: pre-wrap; }
.msg.assistant .bubble { background: var(--assistant); border: 1px solid var(--border); border-bottom-left-radius: 4px; }
.msg.assistant .bubble { max-width: 100%; }
.content > :first-child { margin-top: 0; }
.content > :last-child { margin-bottom: 0; }
.content p, .content ul, .content ol, .content blockquote, .content .code-block, .content .table-wrap { margin: 0 0 .7em; }
.content h1, .content h2, .content h3, .content h4, .content h5, .content h6 { margin: .8em 0 .4em; line-height: 1.25; }
.content h1 { font-size: 1.35em; } .content h2 { font-size: 1.2em; } .content h3 { font-size: 1.08em; }
.content h4, .content h5, .content h6 { font-size: 1em; }
.content ul, .content ol { padding-left: 1.5em; }
.content li > ul, .content li > ol { margin: .2em 0; }
.content a { color: var(--accent); }
.content blockquote { border-left: 3px solid var(--border); margin-left: 0; padding: 2px 0 2px 12px; color: var(--muted); }
.content code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
.content :not(pre) > code { background: var(--inline-code); padding: 1px 5px; border-radius: 5px; }
.content hr { border: 0; border-top: 1px solid var(--border); margin: 1em 0; }
.code-block { border: 1px solid var(--border); border-radius: 10px; overflow: hidden; background: var(--code-bg); }
.code-head {
  display: flex; align-items: center; justify-content: space-between; gap: 8px;
  padding: 3px 6px 3px 12px; font-size: 12px; color: var(--muted); border-bottom: 1px solid var(--border);
}
.code-head button { font-size: 12px; padding: 2px 9px; }
.code-block pre { margin: 0; padding: 10px 12px; overflow-x: auto; }
.code-block code { white-space: pre; }
.table-wrap { overflow-x: auto; }
.content table { border-collapse: collapse; font-size: .95em; }
.content th, .content td { border: 1px solid var(--border); padding: 4px 9px; text-align: left; }
.content .al-c { text-align: center; } .content .al-r { text-align: right; }
.meta { margin-top: 6px; font-size: 12px; color: var(--muted); }
.meta:empty { display: none; }
.streaming .content:empty::after, .streaming .content > :last-child::after {
  content: "▍"; color: var(--muted); animation: blink 1s steps(2) infinite; margin-left: 1px;
}
@keyframes blink { 50% { opacity: 0; } }
#error {
  max-width: 860px; width: calc(100% - 28px); margin: 0 auto 8px; padding: 8px 12px; border-radius: 10px;
  color: var(--danger); background: var(--danger-bg); border: 1px solid var(--danger); font-size: 14px;
}
#error[hidden] { display: none; }
#composer {
  display: flex; gap: 8px; align-items: flex-end; max-width: 860px; width: 100%;
  margin: 0 auto; padding: 8px 14px 14px; padding-bottom: max(14px, env(safe-area-inset-bottom));
}
#prompt {
  flex: 1; resize: none; max-height: 40vh; min-height: 44px; padding: 10px 12px;
  border: 1px solid var(--border); border-radius: 12px; background: var(--panel); line-height: 1.4;
}
#send, #stop { height: 44px; padding: 0 16px; border-radius: 12px; font-weight: 600; }
#send { background: var(--accent); color: var(--accent-text); border-color: var(--accent); }
#stop { color: var(--danger); }
#send[hidden], #stop[hidden] { display: none; }
@media (max-width: 720px) {
  header { padding: 6px 10px; gap: 8px; }
  .brand span { display: none; }
  #settings-toggle { display: inline-block; }
  #settings {
    display: none; position: fixed; z-index: 10; left: 0; right: 0; top: 52px; width: auto;
    max-height: calc(100dvh - 52px); border-right: 0; border-bottom: 1px solid var(--border);
    box-shadow: 0 12px 30px rgba(0,0,0,.25);
  }
  #settings.open { display: flex; }
  #messages { padding: 12px 10px 6px; }
  .bubble { max-width: 94%; }
  #composer { padding: 6px 10px 10px; }
  #send, #stop { padding: 0 12px; }
  header button { padding: 6px 10px; font-size: 14px; }
}
</style>
</head>
<body data-state="idle">
<header>
  <div class="brand">
    <svg viewBox="0 0 32 32" aria-hidden="true"><circle cx="16" cy="16" r="15" fill="#e0a526"/><path d="M7 19c4-1 7-5 9-9 2 3 6 4 9 4-2 5-7 8-12 8l-4 4 1-5z" fill="#fff"/><circle cx="20" cy="13" r="1.5" fill="#333"/></svg>
    <span>Finch</span>
  </div>
  <div id="model-name" title="Served model" aria-live="polite">connecting…</div>
  <button id="settings-toggle" type="button" aria-expanded="false" aria-controls="settings">Settings</button>
  <button id="new-chat" type="button">New chat</button>
</header>
<div class="layout">
  <aside id="settings" aria-label="Settings">
    <h2>Settings</h2>
    <div class="field">
      <label for="system-prompt">System prompt</label>
      <textarea id="system-prompt" rows="4" placeholder="Optional: how the assistant should behave"></textarea>
    </div>
    <div class="row">
      <div class="field">
        <label for="temperature">Temperature</label>
        <input id="temperature" type="number" inputmode="decimal" min="0" max="2" step="0.05" value="0.7">
      </div>
      <div class="field">
        <label for="top-p">Top-p</label>
        <input id="top-p" type="number" inputmode="decimal" min="0" max="1" step="0.05" value="0.95">
      </div>
    </div>
    <div class="row">
      <div class="field">
        <label for="max-tokens">Max tokens</label>
        <input id="max-tokens" type="number" inputmode="numeric" min="1" step="1" value="512">
      </div>
      <div class="field">
        <label for="seed">Seed</label>
        <input id="seed" type="number" inputmode="numeric" step="1" placeholder="random">
      </div>
    </div>
    <div class="field">
      <label for="api-key">API key</label>
      <input id="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="only if the server has --api-key" aria-describedby="api-key-hint">
      <span class="hint" id="api-key-hint">Sent as a Bearer token; kept in this browser's local storage.</span>
    </div>
  </aside>
  <main>
    <div id="messages" role="log" aria-live="polite" aria-label="Conversation"></div>
    <div id="error" role="alert" hidden></div>
    <form id="composer" autocomplete="off">
      <label for="prompt" class="visually-hidden">Message</label>
      <textarea id="prompt" rows="1" placeholder="Type a message" enterkeyhint="send" aria-describedby="prompt-hint"></textarea>
      <span id="prompt-hint" class="visually-hidden">Enter sends, Shift+Enter starts a new line.</span>
      <button id="send" type="submit">Send</button>
      <button id="stop" type="button" hidden>Stop</button>
    </form>
  </main>
</div>
<script id="finch-core">
// The parts of the page that do not touch the DOM: HTML escaping, the Markdown renderer and the
// SSE parser. They run unchanged under Node for the tests (ChatPageTests.swift).
(function (root) {
  'use strict';

  var ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

  /** Escapes the five characters that matter in HTML text and quoted attribute values. */
  function escapeHTML(text) {
    return String(text).replace(/[&<>"']/g, function (c) { return ESCAPES[c]; });
  }

  // --- Markdown -----------------------------------------------------------------------------
  // Everything the model writes is escaped before any markup is added: the only tags in the
  // output are the fixed ones this renderer writes, and the only attribute value taken from the
  // input is a link's href, which must be an http or https URL and is escaped too.
  // NUL is reserved for placeholders, so it is replaced in the input first.

  var MAX_DEPTH = 6;
  var FENCE = /^( {0,3})(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*$/;
  var HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
  var RULE = /^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$/;
  var QUOTE = /^ {0,3}> ?(.*)$/;
  var ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])([ \t]+(.*))?$/;
  var TABLE_RULE = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
  var BLANK = /^[ \t]*$/;

  // A list item needs white space after its marker ("-" or "1." alone is text).
  function isItem(line) {
    var m = ITEM.exec(line);
    return m !== null && m[3] !== undefined ? m : null;
  }

  function startsBlock(line, next) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) ||
      isItem(line) !== null || isTableStart(line, next);
  }

  function isTableStart(line, next) {
    return next !== undefined && line.indexOf('|') >= 0 && TABLE_RULE.test(next) && next.indexOf('-') >= 0 &&
      splitRow(line).length === splitRow(next).length;
  }

  function splitRow(line) {
    var s = line.trim();
    if (s.charAt(0) === '|') s = s.slice(1);
    if (s.charAt(s.length - 1) === '|' && s.charAt(s.length - 2) !== '\\') s = s.slice(0, -1);
    var cells = [], cell = '';
    for (var i = 0; i < s.length; i++) {
      var c = s.charAt(i);
      if (c === '\\' && s.charAt(i + 1) === '|') { cell += '|'; i++; }
      else if (c === '|') { cells.push(cell.trim()); cell = ''; }
      else cell += c;
    }
    cells.push(cell.trim());
    return cells;
  }

  function codeBlock(code, info) {
    var lang = String(info || '').replace(/[^\w+#.-]/g, '').slice(0, 32);
    return '<div class="code-block"><div class="code-head"><span class="code-lang">' +
      (lang ? escapeHTML(lang) : 'code') +
      '</span><button type="button" class="copy" aria-label="Copy code">Copy</button></div><pre><code' +
      (lang ? ' class="language-' + escapeHTML(lang) + '"' : '') + '>' + escapeHTML(code) + '</code></pre></div>';
  }

  function renderBlocks(lines, depth) {
    var out = '', para = [], i = 0, m;
    function flush() {
      if (para.length) { out += '<p>' + inline(para.join('\n')) + '</p>'; para = []; }
    }
    while (i < lines.length) {
      var line = lines[i];
      if (BLANK.test(line)) { flush(); i++; continue; }
      if (depth >= MAX_DEPTH) { para.push(line); i++; continue; }

      if ((m = FENCE.exec(line))) {
        flush();
        var indent = m[1].length, fence = m[2], body = [];
        var close = new RegExp('^ {0,3}' + (fence.charAt(0) === '`' ? '`' : '~') + '{' + fence.length + ',}[ \\t]*$');
        i++;
        while (i < lines.length && !close.test(lines[i])) {
          var l = lines[i], k = 0;
          while (k < indent && l.charAt(k) === ' ') k++;
          body.push(l.slice(k));
          i++;
        }
        i++; // the closing fence; while streaming there may be none yet
        out += codeBlock(body.join('\n'), m[3]);
        continue;
      }
      if ((m = HEADING.exec(line))) {
        flush();
        var level = m[1].length;
        out += '<h' + level + '>' + inline(m[2] || '') + '</h' + level + '>';
        i++; continue;
      }
      if (RULE.test(line)) { flush(); out += '<hr>'; i++; continue; }
      if (QUOTE.test(line)) {
        flush();
        var quoted = [];
        while (i < lines.length && (m = QUOTE.exec(lines[i]))) { quoted.push(m[1]); i++; }
        out += '<blockquote>' + renderBlocks(quoted, depth + 1) + '</blockquote>';
        continue;
      }
      if (isTableStart(line, lines[i + 1])) {
        flush();
        var head = splitRow(line), aligns = splitRow(lines[i + 1]).map(function (c) {
          var left = c.charAt(0) === ':', right = c.charAt(c.length - 1) === ':';
          return left && right ? ' class="al-c"' : right ? ' class="al-r"' : '';
        });
        var html = '<div class="table-wrap"><table><thead><tr>';
        head.forEach(function (c, j) { html += '<th' + aligns[j] + '>' + inline(c) + '</th>'; });
        html += '</tr></thead><tbody>';
        i += 2;
        while (i < lines.length && !BLANK.test(lines[i]) && lines[i].indexOf('|') >= 0) {
          var cells = splitRow(lines[i]);
          html += '<tr>';
          for (var j = 0; j < head.length; j++) html += '<td' + aligns[j] + '>' + inline(cells[j] || '') + '</td>';
          html += '</tr>';
          i++;
        }
        out += html + '</tbody></table></div>';
        continue;
      }
      if ((m = isItem(line))) {
        flush();
        var r = renderList(lines, i, depth);
        out += r.html; i = r.next;
        continue;
      }
      para.push(line);
      i++;
    }
    flush();
    return out;
  }

  // A list starts at lines[start]; items are lines with the same kind of marker at most 3 columns
  // in, their continuation lines indented (nested blocks) or plain text (lazy continuation).
  function renderList(lines, start, depth) {
    var first = ITEM.exec(lines[start]);
    var ordered = /\d/.test(first[2]);
    var items = [], cur = null, loose = false, i = start, m;
    while (i < lines.length) {
      var line = lines[i];
      m = isItem(line);
      if (m && m[1].length <= first[1].length + 1 && /\d/.test(m[2]) === ordered) {
        var gap = m[3].length - m[4].length;
        cur = { lines: [m[4]], indent: m[1].length + m[2].length + Math.min(Math.max(gap, 1), 4) };
        items.push(cur); i++; continue;
      }
      if (BLANK.test(line)) {
        var j = i + 1;
        while (j < lines.length && BLANK.test(lines[j])) j++;
        if (j < lines.length) {
          var n = isItem(lines[j]);
          var sibling = n && n[1].length <= first[1].length + 1 && /\d/.test(n[2]) === ordered;
          if (sibling || /^[ \t]{2,}\S/.test(lines[j])) {
            loose = true;
            for (; i < j; i++) cur.lines.push('');
            continue;
          }
        }
        break;
      }
      // An indented line belongs to the item: drop up to the item's content indent.
      var lead = /^[ \t]*/.exec(line)[0].replace(/\t/g, '    ').length;
      if (lead >= 2) {
        cur.lines.push(' '.repeat(Math.max(lead - cur.indent, 0)) + line.replace(/^[ \t]*/, ''));
        i++; continue;
      }
      if (!startsBlock(line, lines[i + 1]) && cur.lines[cur.lines.length - 1] !== '') { cur.lines.push(line); i++; continue; }
      break;
    }
    var startNumber = ordered ? parseInt(first[2], 10) : 1;
    var html = ordered ? (startNumber !== 1 ? '<ol start="' + startNumber + '">' : '<ol>') : '<ul>';
    items.forEach(function (item) {
      var inner = renderBlocks(item.lines, depth + 1);
      if (!loose) inner = inner.replace(/^<p>([\s\S]*?)<\/p>/, '$1');
      html += '<li>' + inner + '</li>';
    });
    return { html: html + (ordered ? '</ol>' : '</ul>'), next: i };
  }

  // Inline Markdown. Every element is built from already balanced HTML and parked in a slot (a
  // NUL-delimited number) so that later patterns cannot match across it: the output stays well
  // nested whatever the model writes (e.g. "**a *b** c*").
  function inline(text) {
    var slots = [];
    function hold(html) { return '\u0000' + (slots.push(html) - 1) + '\u0000'; }
    function anchor(url, labelHTML) {
      return hold('<a href="' + url + '" target="_blank" rel="noopener noreferrer">' + labelHTML + '</a>');
    }
    function emphasis(s) {
      s = s.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, function (_, c) { return hold('<strong>' + emphasis(c) + '</strong>'); });
      s = s.replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, function (_, before, c) { return before + hold('<strong>' + emphasis(c) + '</strong>'); });
      s = s.replace(/(^|[^*])\*(?=[^\s*])([^*\n]*?[^\s*]|[^\s*])\*(?!\*)/g, function (_, before, c) { return before + hold('<em>' + emphasis(c) + '</em>'); });
      s = s.replace(/(^|[^\w])_(?=[^\s_])([^_\n]*?[^\s_]|[^\s_])_(?!\w)/g, function (_, before, c) { return before + hold('<em>' + emphasis(c) + '</em>'); });
      s = s.replace(/~~(?=\S)([\s\S]*?\S)~~/g, function (_, c) { return hold('<del>' + emphasis(c) + '</del>'); });
      return s;
    }
    // Code spans first: nothing inside them is Markdown.
    text = text.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, function (_, ticks, code) {
      code = code.replace(/\n/g, ' ');
      if (/^ [\s\S]* $/.test(code) && /\S/.test(code)) code = code.slice(1, -1);
      return hold('<code>' + escapeHTML(code) + '</code>');
    });
    // Backslash escapes keep a punctuation character literal.
    text = text.replace(/\\([\\`*_{}\[\]()#+\-.!~|<>])/g, function (_, c) { return hold(escapeHTML(c)); });
    var s = escapeHTML(text);
    // [label](http(s) URL): any other scheme (javascript:, data:, …) stays plain text. The URL is
    // escaped text, so it cannot contain a quote that would end the attribute.
    s = s.replace(/\[([^\[\]\n\u0000]+)\]\((https?:\/\/[^\s()\u0000]+?)(?:[ \t]+&quot;[^\n\u0000]*?&quot;)?\)/g,
      function (_, label, url) { return anchor(url, emphasis(label)); });
    // Bare http(s) URLs, without the punctuation that usually ends a sentence.
    s = s.replace(/(^|[\s(])(https?:\/\/(?:[^\s&\u0000]|&amp;)+)/g, function (_, before, url) {
      var rest = '';
      for (;;) {
        if (/&amp;$/.test(url)) { rest = '&amp;' + rest; url = url.slice(0, -5); }
        else if (/[.,:;!?)\]*_~]$/.test(url)) { rest = url.slice(-1) + rest; url = url.slice(0, -1); }
        else break;
      }
      if (!/^https?:\/\/./.test(url)) return before + url + rest;
      return before + anchor(url, url) + rest;
    });
    s = emphasis(s).replace(/\n/g, '<br>');
    // Slots hold slots made before them (a link's label, nested emphasis): expand recursively.
    function expand(html) {
      return html.replace(/\u0000(\d+)\u0000/g, function (_, n) { return expand(slots[+n]); });
    }
    return expand(s);
  }

  /** Renders Markdown to HTML; every character of the input reaches the output escaped. */
  function renderMarkdown(source) {
    var text = String(source).replace(/\r\n?/g, '\n').replace(/\u0000/g, '\uFFFD');
    return renderBlocks(text.split('\n'), 0);
  }

  // --- Server-sent events -------------------------------------------------------------------
  /**
   * An SSE parser fed with decoded text in pieces of any size (split anywhere, even inside a
   * line or a CRLF); calls onData(data) once per event that has data lines (joined with \n).
   */
  function createSSEParser(onData) {
    var buffer = '', data = [], hasData = false;
    function line(l) {
      if (l === '') {
        if (hasData) { var d = data.join('\n'); data = []; hasData = false; onData(d); }
        return;
      }
      if (l.charAt(0) === ':') return;
      var colon = l.indexOf(':');
      var field = colon < 0 ? l : l.slice(0, colon);
      var value = colon < 0 ? '' : l.slice(colon + 1);
      if (value.charAt(0) === ' ') value = value.slice(1);
      if (field === 'data') { data.push(value); hasData = true; }
    }
    return {
      push: function (text) {
        buffer += text;
        var re = /\r\n|\r|\n/g, pos = 0, m;
        while ((m = re.exec(buffer))) {
          if (m[0] === '\r' && m.index === buffer.length - 1) break; // maybe the first half of \r\n
          var l = buffer.slice(pos, m.index);
          pos = re.lastIndex;
          line(l);
        }
        buffer = buffer.slice(pos);
      },
      // The stream ended: a last event without its blank line still counts.
      end: function () {
        var rest = buffer.replace(/\r$/, '');
        buffer = '';
        if (rest !== '') line(rest);
        line('');
      }
    };
  }

  root.FinchCore = { escapeHTML: escapeHTML, renderMarkdown: renderMarkdown, createSSEParser: createSSEParser };
})(typeof window !== 'undefined' ? window : globalThis);
</script>
<script>
(function () {
  'use strict';
  var Core = window.FinchCore;
  function $(id) { return document.getElementById(id); }
  var els = {
    messages: $('messages'), prompt: $('prompt'), send: $('send'), stop: $('stop'), composer: $('composer'),
    newChat: $('new-chat'), system: $('system-prompt'), temperature: $('temperature'), topP: $('top-p'),
    maxTokens: $('max-tokens'), seed: $('seed'), apiKey: $('api-key'), model: $('model-name'),
    error: $('error'), settings: $('settings'), settingsToggle: $('settings-toggle')
  };
  var state = { messages: [], controller: null, model: null };

  var store = {
    get: function (key) { try { return window.localStorage.getItem(key); } catch (e) { return null; } },
    set: function (key, value) {
      try { if (value) window.localStorage.setItem(key, value); else window.localStorage.removeItem(key); } catch (e) { /* private mode */ }
    }
  };

  // ---- settings ----
  var SETTINGS = ['system', 'temperature', 'topP', 'maxTokens', 'seed'];
  (function restoreSettings() {
    var saved = null;
    try { saved = JSON.parse(store.get('finch.settings') || 'null'); } catch (e) { saved = null; }
    if (saved && typeof saved === 'object') {
      SETTINGS.forEach(function (name) { if (typeof saved[name] === 'string') els[name].value = saved[name]; });
    }
    els.apiKey.value = store.get('finch.apiKey') || '';
  })();
  function saveSettings() {
    var values = {};
    SETTINGS.forEach(function (name) { values[name] = els[name].value; });
    store.set('finch.settings', JSON.stringify(values));
  }
  SETTINGS.forEach(function (name) { els[name].addEventListener('change', saveSettings); });
  els.apiKey.addEventListener('change', function () {
    store.set('finch.apiKey', els.apiKey.value.trim());
    clearError();
    loadModel();
  });

  function setSettingsOpen(open) {
    els.settings.classList.toggle('open', open);
    els.settingsToggle.setAttribute('aria-expanded', open ? 'true' : 'false');
  }
  els.settingsToggle.addEventListener('click', function () {
    var open = !els.settings.classList.contains('open');
    setSettingsOpen(open);
    if (open) els.system.focus();
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' && els.settings.classList.contains('open')) { setSettingsOpen(false); els.settingsToggle.focus(); }
  });
  // On a phone the panel covers the chat: a tap on the chat closes it.
  document.querySelector('main').addEventListener('click', function () {
    if (els.settings.classList.contains('open')) setSettingsOpen(false);
  });

  function authHeaders() {
    var key = els.apiKey.value.trim();
    return key ? { 'Authorization': 'Bearer ' + key } : {};
  }

  // ---- errors ----
  function showError(text) { els.error.textContent = text; els.error.hidden = false; }
  function clearError() { els.error.textContent = ''; els.error.hidden = true; }

  // The OpenAI error body is {"error": {"message", "type", "param", "code"}}.
  function errorText(res) {
    return res.text().then(function (body) {
      var message = '';
      try {
        var json = JSON.parse(body);
        if (json && json.error) message = typeof json.error === 'string' ? json.error : String(json.error.message || '');
      } catch (e) { message = body.slice(0, 300); }
      var text = 'Error ' + res.status + (message ? ': ' + message : res.statusText ? ': ' + res.statusText : '');
      if (res.status === 429 && !/try again/i.test(text)) text += ' (busy, try again in a moment)';
      if (res.status === 401) text += (/[.!?]$/.test(text) ? ' ' : '. ') + 'Set the API key in Settings.';
      return text;
    });
  }

  // ---- the model in the header ----
  function loadModel() {
    els.model.textContent = 'connecting…';
    return fetch('/v1/models', { headers: authHeaders() }).then(function (res) {
      if (!res.ok) {
        els.model.textContent = res.status === 401 ? 'API key needed' : 'model unavailable';
        return errorText(res).then(function (text) {
          showError(text);
          if (res.status === 401) { setSettingsOpen(true); els.apiKey.focus(); }
        });
      }
      return res.json().then(function (body) {
        var first = body && Array.isArray(body.data) ? body.data[0] : null;
        state.model = first && typeof first.id === 'string' ? first.id : null;
        els.model.textContent = state.model || 'unknown model';
        els.model.title = 'Served model: ' + (state.model || 'unknown');
        document.title = state.model ? 'Finch · ' + state.model : 'Finch chat';
        showEmpty();
      });
    }).catch(function (e) {
      els.model.textContent = 'offline';
      showError('Cannot reach the server: ' + e.message);
    });
  }

  // ---- conversation view ----
  function showEmpty() {
    if (state.messages.length || els.messages.querySelector('.msg')) return;
    els.messages.innerHTML = '';
    var div = document.createElement('div');
    div.className = 'empty';
    var title = document.createElement('p');
    var strong = document.createElement('strong');
    strong.textContent = state.model ? 'Chat with ' + state.model : 'Chat with the served model';
    title.appendChild(strong);
    var hint = document.createElement('p');
    hint.textContent = 'Replies stream as they are generated, on this machine. Enter sends, Shift+Enter starts a new line.';
    div.appendChild(title); div.appendChild(hint);
    els.messages.appendChild(div);
  }

  function addMessage(role, text) {
    var empty = els.messages.querySelector('.empty');
    if (empty) empty.remove();
    var root = document.createElement('div');
    root.className = 'msg ' + role;
    var bubble = document.createElement('div');
    bubble.className = 'bubble';
    var who = document.createElement('span');
    who.className = 'visually-hidden';
    who.textContent = role === 'user' ? 'You:' : 'Assistant:';
    var content = document.createElement('div');
    content.className = 'content';
    if (role === 'user') content.textContent = text; else content.innerHTML = Core.renderMarkdown(text);
    var meta = document.createElement('div');
    meta.className = 'meta';
    bubble.appendChild(who); bubble.appendChild(content); bubble.appendChild(meta);
    root.appendChild(bubble);
    els.messages.appendChild(root);
    els.messages.scrollTop = els.messages.scrollHeight;
    return { root: root, content: content, meta: meta };
  }

  function nearBottom() {
    var m = els.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  // Copy buttons of code blocks (delegated: blocks are re-rendered while streaming).
  els.messages.addEventListener('click', function (e) {
    var button = e.target.closest ? e.target.closest('button.copy') : null;
    if (!button) return;
    var code = button.closest('.code-block').querySelector('code');
    var text = code ? code.textContent : '';
    var done = function (label) {
      button.textContent = label;
      setTimeout(function () { button.textContent = 'Copy'; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done('Copied'); }, function () { done(fallbackCopy(text) ? 'Copied' : 'Copy failed'); });
    } else {
      done(fallbackCopy(text) ? 'Copied' : 'Copy failed');
    }
  });
  function fallbackCopy(text) {
    var area = document.createElement('textarea');
    area.value = text; area.setAttribute('readonly', ''); area.style.position = 'fixed'; area.style.opacity = '0';
    document.body.appendChild(area); area.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    area.remove();
    return ok;
  }

  // ---- sending ----
  function numberField(input, integer) {
    var raw = input.value.trim();
    if (raw === '') return null;
    var value = integer ? parseInt(raw, 10) : parseFloat(raw);
    return isFinite(value) ? value : null;
  }

  function buildRequest() {
    var messages = [];
    var system = els.system.value.trim();
    if (system) messages.push({ role: 'system', content: system });
    state.messages.forEach(function (m) { messages.push({ role: m.role, content: m.content }); });
    var body = { messages: messages, stream: true, stream_options: { include_usage: true } };
    if (state.model) body.model = state.model;
    var t = numberField(els.temperature, false), p = numberField(els.topP, false);
    var n = numberField(els.maxTokens, true), seed = numberField(els.seed, true);
    if (t !== null) body.temperature = t;
    if (p !== null) body.top_p = p;
    if (n !== null) body.max_tokens = n;
    if (seed !== null) body.seed = seed;
    return body;
  }

  function setBusy(busy) {
    document.body.setAttribute('data-state', busy ? 'streaming' : 'idle');
    els.send.hidden = busy;
    els.stop.hidden = !busy;
  }

  function invalidSetting() {
    var fields = [[els.temperature, 'Temperature (0–2)'], [els.topP, 'Top-p (0–1)'], [els.maxTokens, 'Max tokens (a whole number ≥ 1)'], [els.seed, 'Seed (a whole number)']];
    for (var i = 0; i < fields.length; i++) {
      if (!fields[i][0].checkValidity()) return fields[i];
    }
    return null;
  }

  function formatStats(s) {
    var parts = [];
    if (s.stopped) parts.push('stopped');
    if (s.failed) parts.push('interrupted');
    if (s.tokens > 0) parts.push((s.exact ? '' : '≈') + s.tokens + (s.tokens === 1 ? ' token' : ' tokens'));
    var decode = (s.tEnd - s.tFirst) / 1000;
    if (s.tokens > 1 && decode > 0) parts.push(((s.tokens - 1) / decode).toFixed(1) + ' tokens/s');
    if (s.tFirst) parts.push('first token ' + ((s.tFirst - s.t0) / 1000).toFixed(2) + ' s');
    if (s.finish === 'length') parts.push('hit max tokens');
    return parts.join(' · ');
  }

  function send() {
    if (state.controller) return;
    var text = els.prompt.value;
    if (!text.trim()) return;
    var bad = invalidSetting();
    if (bad) {
      showError('Check the setting ' + bad[1] + '.');
      setSettingsOpen(true); bad[0].focus();
      return;
    }
    clearError();
    els.prompt.value = '';
    autosize();
    var turn = { role: 'user', content: text };
    state.messages.push(turn);
    var userView = addMessage('user', text);
    var reply = { role: 'assistant', content: '' };
    var view = addMessage('assistant', '');
    view.root.classList.add('streaming');
    view.root.setAttribute('aria-busy', 'true');
    var controller = new AbortController();
    state.controller = controller;
    setBusy(true);

    var stats = { t0: performance.now(), tFirst: 0, tEnd: 0, tokens: 0, exact: false, finish: null, stopped: false, failed: false };
    var chunks = 0, usage = null, finished = false, painted = true, answered = false;
    function paint() {
      painted = true;
      var follow = nearBottom();
      view.content.innerHTML = Core.renderMarkdown(reply.content);
      if (follow) els.messages.scrollTop = els.messages.scrollHeight;
    }
    function schedule() {
      if (!painted) return;
      painted = false;
      requestAnimationFrame(paint);
    }
    var parser = Core.createSSEParser(function (data) {
      if (finished) return;
      if (data === '[DONE]') { finished = true; return; }
      var chunk;
      try { chunk = JSON.parse(data); } catch (e) { throw new Error('The server sent a malformed stream chunk: ' + data.slice(0, 120)); }
      if (chunk && chunk.error) {
        throw new Error('Error: ' + (chunk.error.message || JSON.stringify(chunk.error)));
      }
      var choice = chunk && chunk.choices && chunk.choices[0];
      if (choice) {
        var delta = choice.delta && choice.delta.content;
        if (typeof delta === 'string' && delta.length) {
          if (!stats.tFirst) stats.tFirst = performance.now();
          reply.content += delta;
          chunks++;
          schedule();
        }
        if (choice.finish_reason) stats.finish = choice.finish_reason;
      }
      if (chunk && chunk.usage) usage = chunk.usage;
    });

    fetch('/v1/chat/completions', {
      method: 'POST',
      headers: Object.assign({ 'Content-Type': 'application/json', 'Accept': 'text/event-stream' }, authHeaders()),
      body: JSON.stringify(buildRequest()),
      signal: controller.signal
    }).then(function (res) {
      answered = true;
      if (!res.ok) return errorText(res).then(function (t) { throw new Error(t); });
      if (!res.body) throw new Error('This browser cannot read a streamed response.');
      var reader = res.body.getReader();
      var decoder = new TextDecoder('utf-8');
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) { parser.push(decoder.decode()); parser.end(); return; }
          parser.push(decoder.decode(r.value, { stream: true }));
          return pump();
        });
      }
      return pump().then(function () {
        if (!finished && !stats.finish) throw new Error('The stream ended before the reply was complete.');
      });
    }).catch(function (e) {
      if (controller.signal.aborted) stats.stopped = true;
      else {
        stats.failed = true;
        var message = e && e.message ? e.message : String(e);
        // fetch and stream reads reject with a TypeError when the connection fails.
        if (e && e.name === 'TypeError') message = (answered ? 'The connection was lost: ' : 'Cannot reach the server: ') + message;
        showError(message);
      }
    }).then(function () {
      stats.tEnd = performance.now();
      state.controller = null;
      setBusy(false);
      view.root.classList.remove('streaming');
      view.root.removeAttribute('aria-busy');
      if (reply.content === '' && (stats.stopped || stats.failed)) {
        // Nothing came back: take the turn back so the text can be sent again.
        state.messages.splice(state.messages.indexOf(turn), 1);
        view.root.remove(); userView.root.remove();
        if (!els.prompt.value) { els.prompt.value = text; autosize(); }
        showEmpty();
      } else {
        state.messages.push(reply);
        paint();
        stats.exact = !!(usage && typeof usage.completion_tokens === 'number');
        stats.tokens = stats.exact ? usage.completion_tokens : chunks;
        view.meta.textContent = formatStats(stats);
        if (nearBottom()) els.messages.scrollTop = els.messages.scrollHeight;
      }
      els.prompt.focus();
    });
  }

  function stop() { if (state.controller) state.controller.abort(); }

  function newChat() {
    stop();
    state.messages = [];
    els.messages.innerHTML = '';
    clearError();
    showEmpty();
    els.prompt.focus();
  }

  function autosize() {
    els.prompt.style.height = 'auto';
    els.prompt.style.height = Math.min(els.prompt.scrollHeight + 2, window.innerHeight * 0.4) + 'px';
  }

  els.composer.addEventListener('submit', function (e) { e.preventDefault(); send(); });
  els.prompt.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      send();
    }
  });
  els.prompt.addEventListener('input', autosize);
  els.stop.addEventListener('click', stop);
  els.newChat.addEventListener('click', newChat);

  showEmpty();
  loadModel();
  els.prompt.focus();
})();
</script>
</body>
</html>
"""#
}
