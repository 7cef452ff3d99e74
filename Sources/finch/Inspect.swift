import ArgumentParser
import FinchCore
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

    @Flag(help: "Also dequantize every tensor to Float32 in Hugging Face layout and print its SHA-256 (compare with the Python reference's checksums).")
    var checksums = false

    func run() throws {
        try CLI.run {
            let source = try ModelSource(path: CLI.resolveModel(model))
            var summary = try ModelSummary(source: source)
            if checksums {
                summary.checksums = try source.tensors.map { tensor in
                    let values = try source.float32(tensor.name)
                    let digest = values.withUnsafeBytes { SHA256.hex($0) }
                    return ModelSummary.TensorChecksum(name: tensor.name, type: tensor.storage.name, shape: tensor.shape, sha256: digest)
                }
            }
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
