import FinchCore
import FinchFormats
import FinchModels
import Foundation
import XCTest

/// One model's training fixture from reference/make_training_fixtures.py: the tiny model, the
/// packed batch of three sequences (6, 11, 9 tokens), the loss weights and PyTorch's results.
struct TrainingFixture {
    let name: String
    let model: CausalLM
    let json: JSONValue
    let tensors: SafeTensorsFile
    let batch: PackedBatch
    /// `∂L/∂log p` per token: the loss is `L = Σ_t weights[t] · log p_t`.
    let weights: [Float]

    /// - Parameters:
    ///   - kind: the fixture family: `training` (make_training_fixtures.py) or `qlora`
    ///     (make_qlora_fixtures.py, whose model must be loaded with `options` quantizing it).
    init(_ name: String, kind: String = "training", options: ModelLoadOptions = .init()) throws {
        self.name = name
        let fixtures = ModelParityTests.fixtures
        json = try JSONValue.parse(contentsOf: fixtures + "/\(kind)_\(name).json")
        tensors = try SafeTensorsFile(path: fixtures + "/\(kind)_\(name).safetensors")
        model = try CausalLM(source: ModelSource(path: fixtures + "/" + name), options: options)
        let sequences = try XCTUnwrap(json["sequences"]?.arrayValue).map { $0.arrayValue?.compactMap(\.intValue) ?? [] }
        let labels = try XCTUnwrap(json["labels"]?.arrayValue).map { $0.arrayValue?.compactMap(\.intValue) ?? [] }
        batch = try PackedBatch(sequences: sequences, labels: labels)
        weights = try tensors.float32("weights")
    }

    func floats(_ key: String) throws -> [Float] { try tensors.float32(key) }

    subscript(path: String...) -> JSONValue? {
        var value: JSONValue? = json
        for key in path { value = value?[key] }
        return value
    }

    /// The LoRA configuration of case `lora` or `dropout`.
    func loraConfiguration(_ name: String) throws -> LoRAConfiguration {
        let c = try XCTUnwrap(json["cases"]?[name])
        return LoRAConfiguration(r: try XCTUnwrap(c["r"]?.intValue), loraAlpha: try XCTUnwrap(c["lora_alpha"]?.doubleValue),
                                 loraDropout: try XCTUnwrap(c["lora_dropout"]?.doubleValue), targetModules: .allLinear,
                                 useRSLoRA: try XCTUnwrap(c["use_rslora"]?.boolValue))
    }

    /// An adapter of case `name` with PyTorch's A and B values.
    func adapter(_ name: String) throws -> LoRAAdapter {
        let adapter = try LoRAAdapter(name: name, configuration: loraConfiguration(name), model: model, seed: 1)
        for tensor in adapter.parameters.tensors {
            try adapter.parameters.setValues(of: tensor.name, to: floats("\(name).\(tensor.name)"))
        }
        return adapter
    }
}

/// Elementwise `|ours − theirs| ≤ atol + rtol·|theirs|`, reporting the worst elements; returns the
/// largest absolute error and the largest error relative to the bound (≤ 1 passes).
@discardableResult
func assertClose(_ label: String, _ ours: [Float], _ theirs: [Float], atol: Float, rtol: Float,
                 file: StaticString = #filePath, line: UInt = #line) -> (absolute: Float, ofBound: Float) {
    guard ours.count == theirs.count else {
        XCTFail("\(label): \(ours.count) values, expected \(theirs.count)", file: file, line: line)
        return (.infinity, .infinity)
    }
    var worst: Float = 0, worstRatio: Float = 0
    var bad: [(Int, Float, Float)] = []
    for i in ours.indices {
        let diff = abs(ours[i] - theirs[i]), bound = atol + rtol * abs(theirs[i])
        if !(diff <= bound) { bad.append((i, ours[i], theirs[i])) }
        worst = max(worst, diff.isNaN ? .infinity : diff)
        worstRatio = max(worstRatio, diff.isNaN ? .infinity : diff / bound)
    }
    if !bad.isEmpty {
        let top = bad.sorted { abs($0.1 - $0.2) > abs($1.1 - $1.2) }.prefix(4).map { "[\($0.0)] \($0.1) vs \($0.2)" }
        XCTFail("\(label): \(bad.count)/\(ours.count) beyond atol \(atol) + rtol \(rtol)·|ref|; worst \(top.joined(separator: ", "))",
                file: file, line: line)
    }
    if ProcessInfo.processInfo.environment["FINCH_TOLERANCE_REPORT"] != nil {
        print("tolerance \(label): max |Δ| \(worst), max |Δ|/bound \(worstRatio), max |ref| \(theirs.map(abs).max() ?? 0)")
    }
    return (worst, worstRatio)
}
