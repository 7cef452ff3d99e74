/// The error thrown by everything in FinchFormats: which file, where in it, and what is wrong.
///
/// The description is one line meant for a user: `PATH: reason` (the CLI prints it as is).
public struct FormatError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file or folder the problem is in.
    public var path: String
    /// What is wrong and, where it helps, what to do.
    public var reason: String

    public init(_ path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}
