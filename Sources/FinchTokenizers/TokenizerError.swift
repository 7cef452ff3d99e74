/// The error thrown by FinchTokenizers: which file (and field) and what is wrong.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String

    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}
