/// The error thrown by FinchTraining: what it is about (a configuration key such as
/// `gradient_accumulation_steps`, or a parameter name) and what is wrong.
///
/// The description is one line meant for a user: `subject: reason` (the CLI prints it as is).
public struct TrainingError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The configuration key (TRL's snake_case name) or the trainable parameter the problem is in.
    public var subject: String
    /// What is wrong and, where it helps, what to do.
    public var reason: String

    public init(_ subject: String, _ reason: String) {
        self.subject = subject
        self.reason = reason
    }

    public var description: String { "\(subject): \(reason)" }
}
