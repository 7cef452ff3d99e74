import ArgumentParser
import FinchFormats
import FinchTokenizers
import Foundation

/// Shared plumbing of the subcommands: model resolution, progress on stderr, and one-line errors.
enum CLI {
    /// A progress or status line on stderr (stdout stays clean for results).
    static func log(_ message: String) {
        FileHandle.standardError.write(Data(("finch: " + message + "\n").utf8))
    }

    /// A path as given, or a known model's cached path (fetched on first use).
    static func resolveModel(_ argument: String) throws -> String {
        if FileManager.default.fileExists(atPath: argument) { return argument }
        if let known = KnownModel.named(argument) {
            return try ModelCache.fromEnvironment().ensure(known, log: log)
        }
        throw FormatError(argument, "no such file or directory, and not a known model name (\(KnownModel.all.map(\.name).joined(separator: ", ")))")
    }

    /// Runs `body`; a Finch error becomes one line on stderr and exit status 1.
    static func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as FormatError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode.failure
        } catch let error as TokenizerError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode.failure
        }
    }
}
