import ArgumentParser
import FinchCore
import FinchFormats
import FinchGeneration
import FinchModels
import FinchJinja
import FinchTokenizers
import FinchTraining
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

    /// The tokenizer of a model argument; a folder holding tokenizer.json without config.json is
    /// accepted too (a tokenizer saved on its own).
    static func loadTokenizer(_ argument: String) throws -> (Tokenizer, String) {
        let path = try resolveModel(argument)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
           !FileManager.default.fileExists(atPath: path + "/config.json"),
           FileManager.default.fileExists(atPath: path + "/tokenizer.json") {
            func optional(_ name: String) -> String? {
                FileManager.default.fileExists(atPath: path + "/" + name) ? path + "/" + name : nil
            }
            return (try Tokenizer(tokenizerJSON: path + "/tokenizer.json", tokenizerConfig: optional("tokenizer_config.json"),
                                  chatTemplateFile: optional("chat_template.jinja")), path)
        }
        return (try Tokenizer(source: ModelSource(path: path)), path)
    }

    /// A file's text, or an error naming it.
    static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw FormatError(path, "cannot read the file") }
        guard let text = String(data: data, encoding: .utf8) else { throw FormatError(path, "not valid UTF-8") }
        return text
    }

    /// A JSON value given inline or as @FILE, for template variables.
    static func jinjaJSON(_ argument: String, what: String) throws -> JinjaValue {
        let (text, origin) = argument.hasPrefix("@") ? (try readText(String(argument.dropFirst())), String(argument.dropFirst())) : (argument, what)
        do {
            return try JinjaValue(json: text)
        } catch let error as JinjaError {
            throw FormatError(origin, "\(error.message) (line \(error.line), column \(error.column))")
        }
    }

    /// Runs `body`; a Finch error becomes one line on stderr and exit status 1.
    static func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let stop as TrainingInterrupted {
            log("interrupted at step \(stop.step)/\(stop.totalSteps); checkpoint: \(stop.checkpoint). "
                + "The same command with --resume continues from it.")
            throw ExitCode(130)
        } catch {
            guard let line = oneLine(error) else { throw error }
            FileHandle.standardError.write(Data("error: \(line)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// The one-line message of an error Finch reports itself; nil for others (ArgumentParser's).
    static func oneLine(_ error: any Error) -> String? {
        switch error {
        case let e as FormatError: e.description
        case let e as ModelError: e.description
        case let e as GenerationError: e.description
        case let e as TokenizerError: e.description
        case let e as TrainingError: e.description
        case let e as QuantizationError: "\(e)"
        case let e as CocoaError:
            // File-system errors from Foundation (an output folder that is a file, no permission …).
            "\((e.userInfo[NSFilePathErrorKey] as? String) ?? "file"): "
                + ((e.userInfo[NSUnderlyingErrorKey] as? NSError)?.localizedDescription ?? e.localizedDescription)
        default: nil
        }
    }
}
