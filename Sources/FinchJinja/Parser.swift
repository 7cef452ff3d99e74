// Recursive-descent parser mirroring jinja2 3.1's `Parser` method by method, so that precedence
// and the odd corners match: `-2 ** 2` is `(-2) ** 2`, filters bind tighter than arithmetic
// (`a + b | f` is `a + (b | f)`), `x is divisibleby 3` takes a bare argument, adjacent string
// literals are concatenated, and `for x in xs if cond` filters before the loop counts.
//
// Like jinja2's compiler, an unknown filter or test is a syntax error, except inside an `if`
// statement or an inline `if` expression ("soft" frames), where it only fails if executed.
// `include`, `extends`, `import`, `from` and `autoescape` throw an `unsupported` error: chat
// templates are rendered from a string with no loader, where jinja2 cannot run them either.

struct Parser {
    private var tokens: [Token]
    private var index = 0
    private var tagStack: [String] = []
    private var endTokenStack: [[String]] = []
    /// One entry per frame being parsed; `true` when that frame is soft (inside `if`).
    private var softStack: [Bool] = [false]
    private var loopDepth = 0

    init(tokens: [Token]) { self.tokens = tokens }

    // MARK: - Token stream

    private var current: Token { tokens[index] }
    private var next: Token { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() -> Token {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func isName(_ value: String, _ token: Token? = nil) -> Bool {
        let t = token ?? current
        return t.kind == .name && t.text == value
    }

    private func isOp(_ value: String, _ token: Token? = nil) -> Bool {
        let t = token ?? current
        return t.kind == .op && t.text == value
    }

    private mutating func skipOp(_ value: String) -> Bool {
        if isOp(value) { _ = advance(); return true }
        return false
    }

    private mutating func skipName(_ value: String) -> Bool {
        if isName(value) { _ = advance(); return true }
        return false
    }

    private func fail(_ message: String, _ position: SourcePosition? = nil) -> JinjaError {
        let p = position ?? current.position
        return JinjaError(.syntax, message, line: p.line, column: p.column)
    }

    /// jinja2 `describe_token`.
    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .name: return token.text
        case .op: return token.text
        case .data: return "template data / text"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .eof: return "end of template"
        }
    }

    private mutating func expect(_ kind: TokenKind, _ what: String) throws -> Token {
        guard current.kind == kind else { throw unexpected(expected: what) }
        return advance()
    }

    private mutating func expectOp(_ op: String) throws {
        guard isOp(op) else { throw unexpected(expected: op) }
        _ = advance()
    }

    private mutating func expectName(_ name: String) throws {
        guard isName(name) else { throw unexpected(expected: name) }
        _ = advance()
    }

    private func unexpected(expected: String) -> JinjaError {
        if current.kind == .eof {
            return fail("unexpected end of template, expected '\(expected)'.")
        }
        return fail("expected token '\(expected)', got '\(describe(current))'")
    }

    private var isSoft: Bool { softStack.last ?? false }

    // MARK: - Template structure

    mutating func parseTemplate() throws -> [Stmt] {
        let body = try subparse(endTokens: nil)
        if current.kind != .eof { throw fail("unexpected '\(describe(current))'") }
        return ScopeAnalysis.annotate(body, outerNames: [], parameters: [])
    }

    private mutating func subparse(endTokens: [String]?) throws -> [Stmt] {
        var body: [Stmt] = []
        while current.kind != .eof {
            let token = current
            switch token.kind {
            case .data:
                _ = advance()
                body.append(.data(token.text))
            case .variableBegin:
                _ = advance()
                body.append(.output(try parseTuple()))
                _ = try expect(.variableEnd, "end of print statement")
            case .blockBegin:
                _ = advance()
                if let endTokens, current.kind == .name, endTokens.contains(current.text) { return body }
                body.append(contentsOf: try parseStatement())
                _ = try expect(.blockEnd, "end of statement block")
            default:
                throw fail("unexpected '\(describe(token))'")
            }
        }
        return body
    }

    /// jinja2 `parse_statements`: the body up to one of `endTokens`, optionally consuming it.
    private mutating func parseStatements(_ endTokens: [String], dropNeedle: Bool = false) throws -> [Stmt] {
        _ = skipOp(":")
        _ = try expect(.blockEnd, "end of statement block")
        endTokenStack.append(endTokens)
        defer { endTokenStack.removeLast() }
        let body = try subparse(endTokens: endTokens)
        if current.kind == .eof { throw failUnknownTag(nil) }
        if dropNeedle { _ = advance() }
        return body
    }

    /// jinja2 `_fail_ut_eof`.
    private func failUnknownTag(_ name: String?) -> JinjaError {
        var parts: [String] = [name.map { "Encountered unknown tag \(pythonRepr($0))." } ?? "Unexpected end of template."]
        if let looking = endTokenStack.last {
            let expected = Set(endTokenStack.joined())
            let list = looking.map { pythonRepr($0) }.joined(separator: " or ")
            if let name, expected.contains(name) {
                parts.append("You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for \(list).")
            } else {
                parts.append("Jinja was looking for the following tags: \(list).")
            }
        }
        if let innermost = tagStack.last {
            parts.append("The innermost block that needs to be closed is \(pythonRepr(innermost)).")
        }
        return fail(parts.joined(separator: " "))
    }

    private mutating func withFrame<T>(soft: Bool, _ body: (inout Parser) throws -> T) rethrows -> T {
        softStack.append(soft)
        defer { softStack.removeLast() }
        return try body(&self)
    }

    private mutating func parseStatement() throws -> [Stmt] {
        let token = current
        guard token.kind == .name else { throw fail("tag name expected") }
        tagStack.append(token.text)
        defer { tagStack.removeLast() }
        switch token.text {
        case "for": return [try parseFor()]
        case "if": return [try parseIf()]
        case "set": return [try parseSet()]
        case "macro": return [try parseMacro()]
        case "call": return [try parseCallBlock()]
        case "filter": return [try parseFilterBlock()]
        case "with": return [try parseWith()]
        case "block": return [try parseBlock()]
        case "print":
            _ = advance()
            var nodes: [Stmt] = []
            while current.kind != .blockEnd {
                if !nodes.isEmpty { try expectOp(",") }
                nodes.append(.output(try parseExpression()))
            }
            return nodes
        case "break", "continue":
            _ = advance()
            guard loopDepth > 0 else {
                // CPython's SyntaxError texts for the generated code.
                let message = token.text == "break" ? "'break' outside loop" : "'continue' not properly in loop"
                throw fail(message, token.position)
            }
            return [token.text == "break" ? .breakLoop(token.position) : .continueLoop(token.position)]
        case "generation":
            // AssistantTracker makes the body a caller macro: `break` inside it is not in a loop.
            _ = advance()
            return [.generation(try parseFunctionBody(["endgeneration"]))]
        case "include", "extends", "import", "from":
            throw JinjaError(.unsupported,
                             "'{% \(token.text) %}' needs a template loader; chat templates are rendered from a single string, so it is not supported",
                             line: token.position.line, column: token.position.column)
        case "autoescape":
            throw JinjaError(.unsupported, "'{% autoescape %}' is not supported: transformers renders chat templates without HTML escaping",
                             line: token.position.line, column: token.position.column)
        default:
            tagStack.removeLast()
            defer { tagStack.append(token.text) }
            throw failUnknownTag(token.text)
        }
    }

    private mutating func parseFor() throws -> Stmt {
        let position = advance().position
        let target = try parseAssignTarget(extraEndRules: ["in"])
        try expectName("in")
        let iterable = try parseTuple(withConditional: false, extraEndRules: ["recursive"])
        var condition: Expr? = nil
        var recursive = false
        var body: [Stmt] = []
        var otherwise: [Stmt] = []
        try withFrame(soft: false) { p in
            if p.skipName("if") { condition = try p.parseExpression() }
            recursive = p.skipName("recursive")
            p.loopDepth += 1
            body = try p.parseStatements(["endfor", "else"])
            p.loopDepth -= 1
        }
        if advance().text != "endfor" {
            otherwise = try parseStatements(["endfor"], dropNeedle: true)
        }
        return .forLoop(ForLoop(target: target, iterable: iterable, condition: condition, recursive: recursive,
                                body: body, otherwise: otherwise, position: position))
    }

    private mutating func parseIf() throws -> Stmt {
        _ = advance()
        var branches: [(Expr, [Stmt])] = []
        var otherwise: [Stmt] = []
        try withFrame(soft: true) { p in
            while true {
                let test = try p.parseTuple(withConditional: false)
                let body = try p.parseStatements(["elif", "else", "endif"])
                branches.append((test, body))
                let token = p.advance()
                if token.text == "elif" { continue }
                if token.text == "else" { otherwise = try p.parseStatements(["endif"], dropNeedle: true) }
                break
            }
        }
        return .ifChain(branches, otherwise: otherwise)
    }

    private mutating func parseSet() throws -> Stmt {
        let position = advance().position
        let target = try parseAssignTarget(withNamespace: true)
        if skipOp("=") {
            return .assign(target, try parseTuple(), position)
        }
        return try withFrame(soft: false) { p in
            let filter = p.isOp("|") ? try p.parseFilter(nil, startInline: false) : nil
            let body = try p.parseStatements(["endset"], dropNeedle: true)
            return .assignBlock(target, filter: filter, body: body, position)
        }
    }

    private mutating func parseMacro() throws -> Stmt {
        let position = advance().position
        let name = try expect(.name, "name").text
        let (parameters, defaults) = try parseSignature()
        let body = try parseFunctionBody(["endmacro"])
        return .macro(makeMacro(name, parameters, defaults, body, position))
    }

    private func makeMacro(_ name: String, _ parameters: [String], _ defaults: [Expr?], _ body: [Stmt],
                           _ position: SourcePosition) -> MacroDefinition {
        let names = NameCollector.names(in: body)
        return MacroDefinition(name: name, parameters: parameters, defaults: defaults, body: body,
                               usesCaller: names.contains("caller") && !parameters.contains("caller"),
                               usesVarargs: names.contains("varargs") && !parameters.contains("varargs"),
                               usesKwargs: names.contains("kwargs") && !parameters.contains("kwargs"),
                               position: position)
    }

    /// The body of a construct jinja2 compiles to a separate Python function (macro, call block,
    /// block, generation): a new non-soft frame where `break`/`continue` are outside any loop.
    private mutating func parseFunctionBody(_ endTokens: [String]) throws -> [Stmt] {
        try withFrame(soft: false) { p in
            let saved = p.loopDepth
            p.loopDepth = 0
            defer { p.loopDepth = saved }
            return try p.parseStatements(endTokens, dropNeedle: true)
        }
    }

    private mutating func parseSignature() throws -> ([String], [Expr?]) {
        try expectOp("(")
        var parameters: [String] = []
        var defaults: [Expr?] = []
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            let name = try expect(.name, "name").text
            if skipOp("=") {
                defaults.append(try parseExpression())
            } else {
                if defaults.contains(where: { $0 != nil }) { throw fail("non-default argument follows default argument") }
                defaults.append(nil)
            }
            parameters.append(name)
        }
        try expectOp(")")
        return (parameters, defaults)
    }

    private mutating func parseCallBlock() throws -> Stmt {
        let position = advance().position
        var parameters: [String] = []
        var defaults: [Expr?] = []
        if isOp("(") { (parameters, defaults) = try parseSignature() }
        let call = try parseExpression()
        guard case .call = call else { throw fail("expected call", position) }
        let body = try parseFunctionBody(["endcall"])
        return .callBlock(call: call, caller: makeMacro("caller", parameters, defaults, body, position), position)
    }

    private mutating func parseFilterBlock() throws -> Stmt {
        let position = advance().position
        return try withFrame(soft: false) { p in
            let filter = try p.parseFilter(nil, startInline: true)
            let body = try p.parseStatements(["endfilter"], dropNeedle: true)
            return .filterBlock(filter: filter, body: body, position)
        }
    }

    private mutating func parseWith() throws -> Stmt {
        _ = advance()
        var targets: [AssignTarget] = []
        var values: [Expr] = []
        while current.kind != .blockEnd {
            if !targets.isEmpty { try expectOp(",") }
            targets.append(try parseAssignTarget())
            try expectOp("=")
            values.append(try parseExpression())
        }
        let body = try withFrame(soft: false) { p in try p.parseStatements(["endwith"], dropNeedle: true) }
        return .with(targets: targets, values: values, body: body)
    }

    private mutating func parseBlock() throws -> Stmt {
        _ = advance()
        let name = try expect(.name, "name").text
        let scoped = skipName("scoped")
        _ = skipName("required")
        let body = try parseFunctionBody(["endblock"])
        if current.kind == .name {
            let endName = advance()
            if endName.text != name { throw fail("'\(name)' expected, got '\(endName.text)'", endName.position) }
        }
        return .block(name: name, scoped: scoped, body: body)
    }

    private mutating func parseAssignTarget(extraEndRules: [String] = [], withNamespace: Bool = false) throws
        -> AssignTarget
    {
        if withNamespace, current.kind == .name, isOp(".", next) {
            let namespace = advance().text
            _ = advance()
            let attribute = try expect(.name, "name").text
            return .namespaceAttribute(namespace, attribute)
        }
        var targets: [AssignTarget] = []
        var isTuple = false
        while true {
            if !targets.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEndRules) { break }
            targets.append(try parseSimpleTarget())
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple, let only = targets.first { return only }
        if targets.isEmpty { throw fail("Expected an expression, got '\(describe(current))'") }
        return .tuple(targets)
    }

    private mutating func parseSimpleTarget() throws -> AssignTarget {
        if current.kind == .name {
            let token = advance()
            if ["true", "false", "True", "False", "none", "None"].contains(token.text) {
                throw fail("can't assign to 'Const'", token.position)
            }
            return .name(token.text)
        }
        if skipOp("(") {
            let inner = try parseAssignTarget()
            try expectOp(")")
            return inner
        }
        throw fail("can't assign to '\(describe(current))'")
    }

    private func isTupleEnd(_ extraEndRules: [String]) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .eof: return true
        case .op: return current.text == ")"
        case .name: return extraEndRules.contains(current.text)
        default: return false
        }
    }

    // MARK: - Expressions

    mutating func parseTuple(withConditional: Bool = true, extraEndRules: [String] = [],
                             explicitParentheses: Bool = false) throws -> Expr {
        let position = current.position
        var items: [Expr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEndRules) { break }
            items.append(try parseExpression(withConditional: withConditional))
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParentheses { throw fail("Expected an expression, got '\(describe(current))'") }
        }
        return .tuple(items, position)
    }

    mutating func parseExpression(withConditional: Bool = true) throws -> Expr {
        withConditional ? try parseConditional() : try parseOr()
    }

    private mutating func parseConditional() throws -> Expr {
        let position = current.position
        var expr = try parseOr()
        while isName("if") {
            _ = advance()
            try withFrame(soft: true) { p in
                let test = try p.parseOr()
                let otherwise = p.skipName("else") ? try p.parseConditional() : nil
                expr = .conditional(test: test, then: expr, otherwise: otherwise, position)
            }
        }
        return expr
    }

    private mutating func parseOr() throws -> Expr {
        var left = try parseAnd()
        while isName("or") {
            let position = advance().position
            left = .or(left, try parseAnd(), position)
        }
        return left
    }

    private mutating func parseAnd() throws -> Expr {
        var left = try parseNot()
        while isName("and") {
            let position = advance().position
            left = .and(left, try parseNot(), position)
        }
        return left
    }

    private mutating func parseNot() throws -> Expr {
        if isName("not") {
            let position = advance().position
            return .not(try parseNot(), position)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> Expr {
        let position = current.position
        let first = try parseMath1()
        var ops: [(CompareOperator, Expr)] = []
        while true {
            if current.kind == .op, let op = CompareOperator(rawValue: current.text), op != .isIn, op != .notIn {
                _ = advance()
                ops.append((op, try parseMath1()))
            } else if isName("in") {
                _ = advance()
                ops.append((.isIn, try parseMath1()))
            } else if isName("not"), isName("in", next) {
                _ = advance()
                _ = advance()
                ops.append((.notIn, try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? first : .compare(first, ops, position)
    }

    private mutating func parseMath1() throws -> Expr {
        var left = try parseConcat()
        while isOp("+") || isOp("-") {
            let token = advance()
            left = .binary(token.text == "+" ? .add : .subtract, left, try parseConcat(), token.position)
        }
        return left
    }

    private mutating func parseConcat() throws -> Expr {
        let position = current.position
        var items = [try parseMath2()]
        while skipOp("~") { items.append(try parseMath2()) }
        return items.count == 1 ? items[0] : .concat(items, position)
    }

    private mutating func parseMath2() throws -> Expr {
        var left = try parsePow()
        while current.kind == .op, ["*", "/", "//", "%"].contains(current.text) {
            let token = advance()
            guard let op = BinaryOperator(rawValue: token.text) else { break }
            left = .binary(op, left, try parsePow(), token.position)
        }
        return left
    }

    private mutating func parsePow() throws -> Expr {
        var left = try parseUnary()
        while isOp("**") {
            let position = advance().position
            left = .binary(.power, left, try parseUnary(), position)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> Expr {
        var node: Expr
        if isOp("-") {
            let position = advance().position
            node = .negate(try parseUnary(withFilter: false), position)
        } else if isOp("+") {
            let position = advance().position
            node = .plus(try parseUnary(withFilter: false), position)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws -> Expr {
        let token = current
        switch token.kind {
        case .name:
            _ = advance()
            switch token.text {
            case "true", "True": return .constant(.bool(true), token.position)
            case "false", "False": return .constant(.bool(false), token.position)
            case "none", "None": return .constant(.none, token.position)
            default: return .name(token.text, token.position)
            }
        case .string:
            _ = advance()
            var text = token.text
            while current.kind == .string { text += advance().text }
            return .constant(.string(text), token.position)
        case .integer:
            _ = advance()
            return .constant(.int(token.integer), token.position)
        case .float:
            _ = advance()
            return .constant(.double(token.float), token.position)
        case .op where token.text == "(":
            _ = advance()
            let node = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return node
        case .op where token.text == "[":
            _ = advance()
            var items: [Expr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return .list(items, token.position)
        case .op where token.text == "{":
            _ = advance()
            var items: [(Expr, Expr)] = []
            while !isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                items.append((key, try parseExpression()))
            }
            try expectOp("}")
            return .dict(items, token.position)
        case .eof:
            throw fail("unexpected end of template")
        default:
            throw fail("unexpected '\(describe(token))'")
        }
    }

    private mutating func parsePostfix(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            if isOp(".") || isOp("[") {
                node = try parseSubscript(node)
            } else if isOp("(") {
                let position = node.position
                node = .call(node, try parseCallArguments(), position)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpression(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            if isOp("|") {
                node = try parseFilter(node, startInline: false)
            } else if isName("is") {
                node = try parseTest(node)
            } else if isOp("(") {
                let position = node.position
                node = .call(node, try parseCallArguments(), position)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ node: Expr) throws -> Expr {
        let token = advance()
        if token.text == "." {
            let attribute = current
            if attribute.kind == .name {
                _ = advance()
                return .getattr(node, attribute.text, token.position)
            }
            if attribute.kind == .integer {
                _ = advance()
                return .getitem(node, .constant(.int(attribute.integer), attribute.position), token.position)
            }
            throw fail("expected name or number", attribute.position)
        }
        var args: [Expr] = []
        while !isOp("]") {
            if !args.isEmpty { try expectOp(",") }
            args.append(try parseSubscribed())
        }
        try expectOp("]")
        let key = args.count == 1 ? args[0] : .tuple(args, token.position)
        return .getitem(node, key, token.position)
    }

    private mutating func parseSubscribed() throws -> Expr {
        let position = current.position
        var start: Expr? = nil
        if !isOp(":") {
            let node = try parseExpression()
            if !isOp(":") { return node }
            start = node
        }
        _ = advance()
        var stop: Expr? = nil
        var step: Expr? = nil
        if !isOp("]"), !isOp(","), !isOp(":") { stop = try parseExpression() }
        if skipOp(":"), !isOp("]"), !isOp(",") { step = try parseExpression() }
        return .slice(start, stop, step, position)
    }

    private mutating func parseCallArguments() throws -> CallArguments {
        let open = current.position
        try expectOp("(")
        var args = CallArguments()
        var requireComma = false
        func ensure(_ ok: Bool) throws {
            if !ok { throw fail("invalid syntax for function call expression", open) }
        }
        while !isOp(")") {
            if requireComma {
                try expectOp(",")
                if isOp(")") { break }
            }
            if skipOp("*") {
                try ensure(args.starArgs == nil && args.starKwargs == nil)
                args.starArgs = try parseExpression()
            } else if skipOp("**") {
                try ensure(args.starKwargs == nil)
                args.starKwargs = try parseExpression()
            } else if current.kind == .name, isOp("=", next) {
                try ensure(args.starKwargs == nil)
                let key = advance().text
                _ = advance()
                args.keywords.append((key, try parseExpression()))
            } else {
                try ensure(args.starArgs == nil && args.starKwargs == nil && args.keywords.isEmpty)
                args.positional.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return args
    }

    private mutating func parseDottedName() throws -> (String, SourcePosition) {
        let token = try expect(.name, "name")
        var name = token.text
        while isOp(".") {
            _ = advance()
            name += "." + (try expect(.name, "name").text)
        }
        return (name, token.position)
    }

    /// Parses `| f(args) | g ...`; with `startInline` the first pipe is implicit (`{% filter f %}`).
    mutating func parseFilter(_ start: Expr?, startInline: Bool) throws -> Expr {
        var node = start
        var inline = startInline
        while isOp("|") || inline {
            if !inline { _ = advance() }
            inline = false
            let (name, position) = try parseDottedName()
            if !isSoft, !Filters.jinjaFilterNames.contains(name) {
                throw fail("No filter named \(pythonRepr(name)).", position)
            }
            let args = isOp("(") ? try parseCallArguments() : CallArguments()
            node = .filter(node, name, args, position)
        }
        guard let node else { throw fail("expected a filter") }
        return node
    }

    private mutating func parseTest(_ node: Expr) throws -> Expr {
        let isToken = advance()
        let negated = skipName("not")
        let (name, position) = try parseDottedName()
        if !isSoft, !TestFunctions.jinjaTestNames.contains(name) {
            throw fail("No test named \(pythonRepr(name)).", position)
        }
        var args = CallArguments()
        if isOp("(") {
            args = try parseCallArguments()
        } else if [.name, .string, .integer, .float].contains(current.kind) || isOp("(") || isOp("[") || isOp("{"),
            !isName("else"), !isName("or"), !isName("and")
        {
            if isName("is") { throw fail("You cannot chain multiple tests with is") }
            args.positional = [try parsePostfix(try parsePrimary())]
        }
        let test = Expr.test(node, name, args, isToken.position)
        return negated ? .not(test, isToken.position) : test
    }
}
