import FinchServer
import Foundation
import XCTest

/// Checks the web chat page without a browser: it loads nothing from the network, it has its
/// controls with labels, and its Markdown renderer and SSE parser (the page's own script, run in
/// Node) escape everything the model writes and reassemble a stream split anywhere.
/// scripts/check-chat-page runs the page in headless Chromium against `finch serve`.
final class ChatPageTests: XCTestCase {
    // MARK: No external resource

    func testPageLoadsNothingFromOutside() {
        XCTAssertEqual(Self.externalReferences(in: ChatPage.html), [])
    }

    /// The checker itself: each way of pulling in an outside resource is caught.
    func testExternalReferenceCheckerCatchesEachKind() {
        let intruders = [
            #"<script src="https://cdn.example.com/marked.js"></script>"#,
            #"<script src="vendor.js"></script>"#,
            #"<link rel="stylesheet" href="//fonts.example.com/css">"#,
            #"<img src='http://example.com/logo.png' alt="">"#,
            #"<iframe src=https://example.com></iframe>"#,
            #"<style>body { background: url(https://example.com/bg.png); }</style>"#,
            #"<style>@import "https://example.com/x.css";</style>"#,
            #"<style>@font-face { font-family: X; src: url(/x.woff2); }</style>"#,
            #"<script>fetch('https://api.example.com/v1/chat');</script>"#,
        ]
        for intruder in intruders {
            let page = ChatPage.html.replacingOccurrences(of: "</body>", with: intruder + "\n</body>")
            XCTAssertFalse(Self.externalReferences(in: page).isEmpty, "not caught: \(intruder)")
        }
    }

    /// What in `html` would make the browser fetch something that is not the page itself: src/href
    /// (and similar) attributes with a scheme other than `data:` or starting with `//`, script
    /// `src`, stylesheets, CSS `url(…)` other than `data:`, `@import`, `@font-face`, and absolute
    /// http(s) URLs anywhere in the scripts (links the renderer builds from model output are
    /// assembled at run time and never start in the source).
    static func externalReferences(in html: String) -> [String] {
        var found: [String] = []
        let scripts = matches(#"<script\b([^>]*)>([\s\S]*?)</script>"#, in: html)
        let styles = matches(#"<style\b[^>]*>([\s\S]*?)</style>"#, in: html)
        // Markup with the bodies of scripts and styles blanked out.
        var markup = html
        for body in (scripts.map { $0[2] } + styles.map { $0[1] }) where !body.isEmpty {
            markup = markup.replacingOccurrences(of: body, with: "")
        }
        let attribute = #"\s(src|href|action|formaction|poster|srcset|data|xlink:href|background)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))"#
        for m in matches(attribute, in: markup) {
            let value = (m[3].isEmpty ? (m[4].isEmpty ? m[5] : m[4]) : m[3]).trimmingCharacters(in: .whitespaces)
            let lower = value.lowercased()
            if lower.hasPrefix("data:") || lower.hasPrefix("#") { continue }
            if lower.hasPrefix("//") || lower.range(of: #"^[a-z][a-z0-9+.-]*:"#, options: .regularExpression) != nil {
                found.append("\(m[1])=\(value)")
            }
        }
        for tag in matches(#"<script\b([^>]*)>"#, in: markup) where tag[1].range(of: #"\ssrc\s*="#, options: .regularExpression) != nil {
            found.append("script with src: \(tag[0])")
        }
        for tag in matches(#"<link\b[^>]*>"#, in: markup) where tag[0].range(of: #"rel\s*=\s*["']?icon"#, options: .regularExpression) == nil {
            found.append("link other than an icon: \(tag[0])")
        }
        for style in styles.map({ $0[1] }) + matches(#"\sstyle\s*=\s*"([^"]*)""#, in: markup).map({ $0[1] }) {
            for url in matches(#"url\(\s*['"]?([^'")\s]*)"#, in: style) where !url[1].lowercased().hasPrefix("data:") {
                found.append("css url(\(url[1]))")
            }
            if style.contains("@import") { found.append("css @import") }
            if style.contains("@font-face") { found.append("css @font-face") }
        }
        for script in scripts.map({ $0[2] }) {
            for url in matches(#"https?://[^\s'"`)]*"#, in: script) { found.append("script URL \(url[0])") }
        }
        return found
    }

    /// Every match of `pattern` in `text`, as [whole match, group 1, group 2, …] ("" for a group
    /// that did not take part).
    static func matches(_ pattern: String, in text: String) -> [[String]] {
        guard let regex = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else {
            XCTFail("bad pattern \(pattern)")
            return []
        }
        let ns = text as NSString
        return regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
            (0..<m.numberOfRanges).map { i in
                let r = m.range(at: i)
                return r.location == NSNotFound ? "" : ns.substring(with: r)
            }
        }
    }

    // MARK: Controls

    func testPageHasItsControlsWithLabels() {
        let html = ChatPage.html
        let ids = ["messages", "prompt", "send", "stop", "new-chat", "system-prompt", "temperature", "top-p",
                   "max-tokens", "seed", "api-key", "model-name", "settings", "settings-toggle", "error", "composer"]
        for id in ids {
            XCTAssertEqual(html.components(separatedBy: "id=\"\(id)\"").count - 1, 1, "id \(id) should appear once")
        }
        // Every input and textarea has a <label for=…> or an aria-label.
        for control in Self.matches(#"<(input|textarea|select)\b[^>]*>"#, in: html) {
            guard let id = Self.matches(#"\sid="([^"]+)""#, in: control[0]).first?[1] else {
                XCTFail("a form control without an id: \(control[0])")
                continue
            }
            XCTAssertTrue(html.contains("<label for=\"\(id)\"") || control[0].contains("aria-label="), "\(id) has no label")
        }
        for (id, attribute) in [("settings-toggle", "aria-controls=\"settings\""), ("messages", "aria-live="), ("error", "role=\"alert\"")] {
            let tag = Self.matches(#"<[a-z]+\b[^>]*\sid=""# + id + #""[^>]*>"#, in: html).first?[0] ?? ""
            XCTAssertTrue(tag.contains(attribute), "#\(id) lacks \(attribute): \(tag)")
        }
        XCTAssertTrue(html.contains("name=\"viewport\""), "no viewport meta: the phone layout needs it")
        XCTAssertTrue(html.contains("prefers-color-scheme: dark"), "no dark color scheme")
        XCTAssertTrue(html.contains("@media (max-width"), "no narrow-screen layout")
        XCTAssertTrue(html.contains("new TextDecoder"), "the stream must be decoded with a streaming TextDecoder")
        XCTAssertTrue(html.contains("{ stream: true }"), "TextDecoder.decode must be called with stream: true")
    }

    // MARK: The page's script, run in Node

    func testMarkdownRendererEscapesModelOutputAndSSEParserReassemblesSplitStreams() throws {
        guard let node = Self.findExecutable("node") else {
            XCTFail("ChatPageTests needs Node (the `node` command; Debian: apt-get install nodejs) to run the page's renderer")
            return
        }
        let html = ChatPage.html
        guard let open = html.range(of: "<script id=\"finch-core\">"),
              let close = html.range(of: "</script>", range: open.upperBound..<html.endIndex) else {
            XCTFail("the page has no <script id=\"finch-core\"> block")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-chatpage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try String(html[open.upperBound..<close.lowerBound]).write(to: dir.appendingPathComponent("core.js"), atomically: true, encoding: .utf8)
        try Self.harness.write(to: dir.appendingPathComponent("harness.js"), atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: node)
        process.arguments = [dir.appendingPathComponent("harness.js").path, dir.appendingPathComponent("core.js").path]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stdout = String(decoding: outData, as: UTF8.self), stderr = String(decoding: errData, as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, "node harness failed:\n\(stdout)\(stderr)")
        XCTAssertTrue(stdout.contains("harness: all checks passed"), "harness output:\n\(stdout)\(stderr)")
    }

    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs FinchCore (the page's DOM-free script) on hostile and ordinary Markdown and on split
    /// SSE streams. Every rendered string must consist of text with only the five escapes plus the
    /// renderer's own tags and attributes; plain text must come back character for character.
    static let harness = #"""
    'use strict';
    const fs = require('fs');
    const vm = require('vm');
    vm.runInThisContext(fs.readFileSync(process.argv[2], 'utf8'));
    const { renderMarkdown, escapeHTML, createSSEParser } = globalThis.FinchCore;
    let failures = 0, checks = 0;
    function fail(msg) { failures++; if (failures <= 30) console.log('FAIL: ' + msg); }

    // --- a strict reading of the renderer's output ---
    const TAGS = {
      p: [], h1: [], h2: [], h3: [], h4: [], h5: [], h6: [], strong: [], em: [], del: [], br: [], hr: [],
      code: ['class'], pre: [], ul: [], ol: ['start'], li: [], blockquote: [], a: ['href', 'target', 'rel'],
      div: ['class'], span: ['class'], button: ['type', 'class', 'aria-label'],
      table: [], thead: [], tbody: [], tr: [], th: ['class'], td: ['class'],
    };
    const VOID = new Set(['br', 'hr']);
    const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
    // Returns the visible text, or null after reporting why the HTML is not acceptable.
    function readHTML(html, input) {
      const where = () => JSON.stringify(input).slice(0, 120) + ' -> ' + JSON.stringify(html).slice(0, 300);
      let text = '', i = 0;
      const stack = [];
      while (i < html.length) {
        const c = html[i];
        if (c === '<') {
          const m = /^<(\/?)([a-z][a-z0-9]*)((?:\s+[a-z-]+="[^"<>]*")*)\s*>/.exec(html.slice(i));
          if (!m) { fail('a "<" that does not start an allowed tag: ' + where()); return null; }
          const [whole, closing, name, attrs] = m;
          if (!(name in TAGS)) { fail('tag <' + name + '> is not one the renderer writes: ' + where()); return null; }
          if (closing) {
            if (stack.pop() !== name) { fail('unbalanced </' + name + '>: ' + where()); return null; }
          } else {
            for (const a of attrs.matchAll(/([a-z-]+)="([^"]*)"/g)) {
              const [, attr, value] = a;
              if (!TAGS[name].includes(attr)) { fail('attribute ' + attr + ' on <' + name + '>: ' + where()); return null; }
              if (attr === 'href' && !/^https?:\/\/[^\s]+$/.test(value)) { fail('href not http(s): ' + value + ' in ' + where()); return null; }
              if (attr === 'class' && !/^[\w #+.-]+$/.test(value)) { fail('odd class ' + value + ': ' + where()); return null; }
              if (attr === 'start' && !/^\d+$/.test(value)) { fail('odd start ' + value + ': ' + where()); return null; }
              if (/&(?!amp;|lt;|gt;|quot;|#39;)/.test(value)) { fail('raw & in attribute: ' + where()); return null; }
            }
            if (!VOID.has(name)) stack.push(name);
            if (name === 'br') text += '\n';
          }
          i += whole.length;
          continue;
        }
        if (c === '>' || c === '"' || c === "'") { fail('unescaped ' + c + ' in text: ' + where()); return null; }
        if (c === '&') {
          const e = /^&(amp|lt|gt|quot|#39);/.exec(html.slice(i));
          if (!e) { fail('raw & in text: ' + where()); return null; }
          text += ENTITIES[e[0]]; i += e[0].length; continue;
        }
        if (c === '\u0000') { fail('placeholder leaked: ' + where()); return null; }
        text += c; i++;
      }
      if (stack.length) { fail('unclosed <' + stack.join('><') + '>: ' + where()); return null; }
      return text;
    }
    function check(input) { checks++; return readHTML(renderMarkdown(input), input); }

    // --- hostile output that has no Markdown meaning comes back as the same visible text ---
    const plain = [
      '<script>alert(1)</script>',
      '<img src=x onerror=alert(1)>',
      '<a href="javascript:alert(1)">click</a>',
      '<svg onload=alert(1)>',
      '"><script>alert(document.cookie)</script>',
      "'; alert(1); //",
      '&lt;b&gt; is already escaped &amp; stays visible',
      '&#60;script&#62; numeric &#x3C; entities',
      '<iframe src="https://evil.example"></iframe>',
      '[x](javascript:alert(1))',
      '[x](data:text/html,<script>alert(1)</script>)',
      '[x](vbscript:msgbox(1))',
      '<style>body{display:none}</style>',
      '</p></div><script>alert(1)</script>',
      '<!-- comment --> <![CDATA[ x ]]>',
      'a\u00000\u0000b and \u00001\u0000',
    ];
    for (const s of plain) {
      const text = check(s);
      const expected = s.replace(/\u0000/g, '\uFFFD');
      if (text !== null && text !== expected) fail('visible text changed: ' + JSON.stringify(s) + ' -> ' + JSON.stringify(text));
    }
    for (const s of ['[x](javascript:alert(1))', '[x](javascript:void%200)', '[x](data:text/html,1)', '<a href="javascript:1">y</a>']) {
      if (/<a /.test(renderMarkdown(s))) fail('made a link from ' + s);
    }

    // --- hostile output mixed with Markdown: must still read as the renderer's tags only ---
    const mixed = [
      '**<script>alert(1)</script>**',
      '*<img src=x onerror=alert(1)>*',
      '`<script>alert(1)</script>`',
      '```"><script>alert(1)</script>\ncode <b>\n```',
      '```js onerror=alert(1)\nlet a = "</code></pre><script>x</script>";\n```',
      '[click](https://example.org/"onmouseover="alert(1))',
      "[click](https://example.org/'onmouseover='alert(1))",
      '[<img src=x onerror=alert(1)>](https://example.org)',
      'https://example.org/"><script>alert(1)</script>',
      'https://example.org/?a=1&b=<2>',
      '# <script>alert(1)</script>',
      '> <script>alert(1)</script>\n> **b<i>**',
      '- <b>item</b>\n- [x](javascript:alert(1))\n  - `<nested>`',
      '1. <ol start="1 onclick=x">\n2. b',
      '| <b> | "q" |\n|---|---|\n| <script> | &x |',
      '![img](https://example.org/x.png"onerror="alert(1))',
      '**unclosed <b> *and* `code',
      '__<u>__ _<i>_ ~~<s>~~',
      '\\<script\\>alert(1)\\</script\\>',
    ];
    for (const s of mixed) check(s);

    // --- the Markdown it should render (expected fragments written from the spec) ---
    const cases = [
      ['**bold**', '<strong>bold</strong>'],
      ['__bold__', '<strong>bold</strong>'],
      ['*it*', '<em>it</em>'],
      ['_it_', '<em>it</em>'],
      ['snake_case_name', 'snake_case_name'],
      ['2 * 3 * 4', '2 * 3 * 4'],
      ['`a < b`', '<code>a &lt; b</code>'],
      ['`` a ` b ``', '<code>a ` b</code>'],
      ['# One', '<h1>One</h1>'],
      ['### Three ###', '<h3>Three</h3>'],
      ['line one\nline two', '<p>line one<br>line two</p>'],
      ['para one\n\npara two', '<p>para one</p><p>para two</p>'],
      ['- a\n- b', '<ul><li>a</li><li>b</li></ul>'],
      ['* a\n* b', '<ul><li>a</li><li>b</li></ul>'],
      ['1. a\n2. b', '<ol><li>a</li><li>b</li></ol>'],
      ['3. c\n4. d', '<ol start="3"><li>c</li><li>d</li></ol>'],
      ['- a\n  - b\n- c', '<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>'],
      ['1. a\n   - x\n2. b', '<ol><li>a<ul><li>x</li></ul></li><li>b</li></ol>'],
      ['Steps:\n1. a\n2. b', '<p>Steps:</p><ol><li>a</li><li>b</li></ol>'],
      ['> quoted\n> more', '<blockquote><p>quoted<br>more</p></blockquote>'],
      ['---', '<hr>'],
      ['[site](https://example.org/a_b_c)', '<a href="https://example.org/a_b_c" target="_blank" rel="noopener noreferrer">site</a>'],
      ['[**b**](http://example.org)', '<a href="http://example.org" target="_blank" rel="noopener noreferrer"><strong>b</strong></a>'],
      ['see https://example.org/x.', 'see <a href="https://example.org/x" target="_blank" rel="noopener noreferrer">https://example.org/x</a>.'],
      ['a https://e.org/?q=1&r=2 b', '<a href="https://e.org/?q=1&amp;r=2" target="_blank" rel="noopener noreferrer">https://e.org/?q=1&amp;r=2</a>'],
      ['```python\nprint("<hi>")\n```', '<span class="code-lang">python</span><button type="button" class="copy" aria-label="Copy code">Copy</button></div><pre><code class="language-python">print(&quot;&lt;hi&gt;&quot;)</code></pre>'],
      ['```\nplain\n```', '<span class="code-lang">code</span>'],
      ['~~~c++\nint x;\n~~~', '<code class="language-c++">int x;</code>'],
      ['```js\nlet a = 1;', '<code class="language-js">let a = 1;</code>'],
      ['```\n**not bold** <b>\n\n# not a heading\n```', '<code>**not bold** &lt;b&gt;\n\n# not a heading</code>'],
      ['  ```sh\n  ls -l\n  ```', '<code class="language-sh">ls -l</code>'],
      ['| a | b |\n|---|--:|\n| 1 | 2 |', '<table><thead><tr><th>a</th><th class="al-r">b</th></tr></thead><tbody><tr><td>1</td><td class="al-r">2</td></tr></tbody></table>'],
      ['\\*not em\\*', '*not em*'],
      ['~~gone~~', '<del>gone</del>'],
    ];
    for (const [input, fragment] of cases) {
      checks++;
      const html = renderMarkdown(input);
      if (!html.includes(fragment)) fail('render ' + JSON.stringify(input) + ': expected ' + JSON.stringify(fragment) + ' in ' + JSON.stringify(html));
      readHTML(html, input);
    }
    // Progressive rendering: every prefix of a reply (as it streams) must render cleanly.
    const reply = '# Title\n\nSome **bold** and `code` with [a link](https://example.org).\n\n1. one\n2. two\n   - nested\n\n```swift\nlet s = "<x>"\n```\n\n> end & <done>';
    for (let n = 0; n <= reply.length; n++) check(reply.slice(0, n));

    // --- fuzz: random mixes of Markdown and HTML syntax (fixed seed) ---
    let seed = 12345;
    const rand = (n) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
    const pieces = ['<', '>', '&', '"', "'", '`', '```', '*', '**', '_', '__', '~~', '[', ']', '(', ')', '](',
      '#', '# ', '- ', '1. ', '> ', '|', '\n', '\n\n', '  ', '\\', 'https://e.org/', 'javascript:', 'x', 'word ',
      '<script>', '</p>', 'onerror=', '&amp;', '&#39;', ':-', '---', '\u0000', 'é', '🐦'];
    for (let k = 0; k < 3000; k++) {
      let s = '';
      const len = 1 + rand(40);
      for (let j = 0; j < len; j++) s += pieces[rand(pieces.length)];
      check(s);
    }

    // --- SSE: events reassembled from bytes split anywhere (mid-line, mid-CRLF, mid-character) ---
    const events = ['{"choices":[{"delta":{"content":"Hé"}}]}', '{"choices":[{"delta":{"content":"漢字 🐦"}}]}',
      'line one\nline two', '', '{"usage":{"completion_tokens":3}}', '[DONE]'];
    const wire = ': keep-alive comment\r\n' +
      'data: ' + events[0] + '\n\n' +
      'event: message\r\ndata:' + events[1] + '\r\n\r\n' +
      'data: line one\ndata: line two\n\n' +
      'data\n\n' +
      'id: 7\ndata: ' + events[4] + '\r\n\r\n' +
      'data: [DONE]\n\n';
    const bytes = new TextEncoder().encode(wire);
    function feed(splits) {
      const got = [];
      const parser = createSSEParser((d) => got.push(d));
      const decoder = new TextDecoder('utf-8');
      let last = 0;
      for (const at of [...splits, bytes.length]) {
        parser.push(decoder.decode(bytes.subarray(last, at), { stream: true }));
        last = at;
      }
      parser.push(decoder.decode());
      parser.end();
      return got;
    }
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    for (let at = 0; at <= bytes.length; at++) {
      checks++;
      const got = feed([at]);
      if (!same(got, events)) { fail('SSE split at byte ' + at + ': ' + JSON.stringify(got)); break; }
    }
    for (let k = 0; k < 500; k++) {
      checks++;
      const splits = [];
      for (let at = rand(4); at < bytes.length; at += 1 + rand(6)) splits.push(at);
      const got = feed(splits);
      if (!same(got, events)) { fail('SSE random splits ' + JSON.stringify(splits) + ': ' + JSON.stringify(got)); break; }
    }
    checks++;
    const byteByByte = feed([...Array(bytes.length).keys()]);
    if (!same(byteByByte, events)) fail('SSE byte by byte: ' + JSON.stringify(byteByByte));
    // A last event without its blank line still arrives when the stream ends.
    checks++;
    const tail = []; const p2 = createSSEParser((d) => tail.push(d)); p2.push('data: a\n\ndata: b'); p2.end();
    if (!same(tail, ['a', 'b'])) fail('SSE unterminated last event: ' + JSON.stringify(tail));

    if (escapeHTML('<&>"\'') !== '&lt;&amp;&gt;&quot;&#39;') fail('escapeHTML');
    if (failures) { console.log(failures + ' of ' + checks + ' checks failed'); process.exit(1); }
    console.log('harness: all checks passed (' + checks + ')');
    """#
}
