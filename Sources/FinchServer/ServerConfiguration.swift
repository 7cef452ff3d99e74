/// How `finch serve` listens and what it accepts.
public struct ServerConfiguration: Sendable {
    /// The address to bind; loopback by default, so nothing outside the machine can connect.
    public var host: String
    /// The TCP port; 0 picks a free one (the chosen port is logged, and passed to `application(onListening:)`).
    public var port: Int
    /// With a key, every `/v1` route needs `Authorization: Bearer <key>` (compared in constant time).
    public var apiKey: String?
    /// Write each request's rendered prompt into its log line (off: prompts never reach the log).
    public var logPrompts: Bool
    /// Requests that may wait behind the running generation; one more is answered 429.
    public var maxQueue: Int
    /// The largest `max_tokens` a request may ask for, and the budget of a request that names none.
    public var maxTokensLimit: Int
    /// The largest request body accepted; a larger one is answered 413.
    public var maxBodyBytes: Int
    /// Seconds a generation request may take from arrival to its last token, queue wait included;
    /// past it the generation is cancelled and answered 504 (or an error event, once streaming).
    public var requestTimeout: Double

    public init(host: String = "127.0.0.1", port: Int = 8080, apiKey: String? = nil, logPrompts: Bool = false,
                maxQueue: Int = 64, maxTokensLimit: Int = 4096, maxBodyBytes: Int = 1 << 20, requestTimeout: Double = 600) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.logPrompts = logPrompts
        self.maxQueue = maxQueue
        self.maxTokensLimit = maxTokensLimit
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeout = requestTimeout
    }

    /// Throws a message naming the first setting out of range.
    public func validate() throws {
        guard port >= 0, port <= 65535 else { throw ServerError("--port must be in 0...65535, got \(port)") }
        guard maxQueue >= 0 else { throw ServerError("--max-queue must be ≥ 0, got \(maxQueue)") }
        guard maxTokensLimit >= 1 else { throw ServerError("--max-tokens-limit must be ≥ 1, got \(maxTokensLimit)") }
        guard maxBodyBytes >= 1 else { throw ServerError("--max-body-bytes must be ≥ 1, got \(maxBodyBytes)") }
        guard requestTimeout > 0, requestTimeout.isFinite else { throw ServerError("--request-timeout must be > 0 seconds, got \(requestTimeout)") }
        if let apiKey, apiKey.isEmpty { throw ServerError("--api-key must not be empty") }
    }
}
