import FinchFormats

/// What the request log line says about one request.
struct RequestRecord: Sendable {
    var method: String
    var path: String
    let start = ContinuousClock.now
    var promptTokens = 0
    var completionTokens = 0
    /// Why a generation ended early ("client gone", "timeout" …), if it did.
    var note: String?
    /// The rendered prompt; written only with `--log-prompts`.
    var prompt: String?
    /// True once a streamed response has taken over logging (it logs when the stream ends).
    var deferred = false

    init(method: String, path: String) {
        self.method = method
        self.path = path
    }

    /// `POST /v1/chat/completions 200 in 31 out 64 1843 ms`, plus the note and, when asked, the
    /// prompt as a JSON string.
    func line(status: Int, includePrompt: Bool) -> String {
        let elapsed = ContinuousClock.now - start
        let ms = Int((Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) * 1e-15).rounded())
        var line = "\(method) \(path) \(status) in \(promptTokens) out \(completionTokens) \(ms) ms"
        if let note { line += " (\(note))" }
        if includePrompt, let prompt { line += " prompt " + JSONValue.string(prompt).compactText }
        return line
    }
}
