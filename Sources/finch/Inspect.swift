import ArgumentParser
import FinchFormats
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: architecture, sizes, tensor storage types, tokenizer and chat template."
    )

    @Argument(help: "A GGUF file, an HF model folder, or a known model name.")
    var model: String

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    func run() throws {
        try CLI.run {
            let source = try ModelSource(path: CLI.resolveModel(model))
            let summary = try ModelSummary(source: source)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(summary), as: UTF8.self))
            } else {
                print(summary.text)
            }
        }
    }
}
