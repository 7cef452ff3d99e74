/// The error FinchServer throws for its own setup problems (not request errors, which become
/// ``APIError`` responses).
public struct ServerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
