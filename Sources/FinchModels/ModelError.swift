/// The error thrown by FinchModels: which model (file or folder), what is wrong, what to do.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String

    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}
