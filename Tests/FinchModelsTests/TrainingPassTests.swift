import FinchCore
import FinchFormats
import FinchModels
import Foundation
import XCTest

/// The training pass's contract beyond parity: checkpointing, packing, labels, the SFT loss, the
/// reference pass, accumulation, and a quantized base.
final class TrainingPassTests: XCTestCase {
    // MARK: - Gradient checkpointing

    /// Checkpointing on and off must give bit-identical log p and gradients: the backward re-runs
    /// the same block code on the same inputs (dropout masks regenerated from the same seed).
    func testCheckpointingGivesBitIdenticalLoRAGradients() throws {
        for name in ["tiny_llama_gqa", "tiny_phi"] {
            let fixture = try TrainingFixture(name)
            var results: [([Float], [Float], [Float])] = []
            for checkpointing in [false, true] {
                let adapter = try fixture.adapter("dropout")
                let pass = TrainingPass(model: fixture.model)
                let options = TrainingPass.Options(gradientCheckpointing: checkpointing, loraDropout: .random(seed: 99))
                let out = try pass.forward(fixture.batch, adapter: adapter, options: options, pool: ThreadPool(threads: 2))
                try pass.backward(logProbabilityGradient: fixture.weights, pool: ThreadPool(threads: 2))
                results.append((out.logProbabilities, Array(UnsafeBufferPointer(start: adapter.parameters.gradients, count: adapter.parameters.count)),
                                try XCTUnwrap(pass.embeddingOutputGradient())))
            }
            XCTAssertEqual(results[0].0, results[1].0, "\(name): log p")
            XCTAssertTrue(results[0].1 == results[1].1, "\(name): LoRA gradients differ with checkpointing")
            XCTAssertTrue(results[0].2 == results[1].2, "\(name): embedding-output gradients differ with checkpointing")
            XCTAssertGreaterThan(results[0].1.map(abs).max()!, 0.1)
        }
    }

    func testCheckpointingGivesBitIdenticalFullGradients() throws {
        let fixture = try TrainingFixture("tiny_phi")
        var gradients: [[Float]] = []
        for checkpointing in [false, true] {
            let model = try fixture.model.trainableCopy()
            let pass = TrainingPass(model: model)
            _ = try pass.forward(fixture.batch, adapter: nil, options: .init(gradientCheckpointing: checkpointing), pool: ThreadPool(threads: 2))
            try pass.backward(logProbabilityGradient: fixture.weights, pool: ThreadPool(threads: 2))
            let p = try XCTUnwrap(model.trainableParameters)
            gradients.append(Array(UnsafeBufferPointer(start: p.gradients, count: p.count)))
        }
        XCTAssertTrue(gradients[0] == gradients[1], "full fine-tuning gradients differ with checkpointing")
    }

    /// Random dropout masks are real (gradients differ from no dropout) and seeded (same seed, same
    /// result; another seed, another result).
    func testRandomDropoutIsSeeded() throws {
        let fixture = try TrainingFixture("tiny_llama_gqa")
        let adapter = try fixture.adapter("dropout")
        let pass = TrainingPass(model: fixture.model)
        func logP(_ dropout: LoRADropout) throws -> [Float] {
            try pass.forward(fixture.batch, adapter: adapter, options: .init(loraDropout: dropout), pool: .serial).logProbabilities
        }
        let a = try logP(.random(seed: 1)), b = try logP(.random(seed: 1)), c = try logP(.random(seed: 2)), off = try logP(.off)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertNotEqual(a, off)
    }

    // MARK: - Packing, labels, loss

    /// transformers' labels are shifted within each sequence; positions restart per sequence.
    func testLabelsAreShiftedWithinEachSequence() throws {
        let fixture = try TrainingFixture("tiny_llama_gqa")
        let targets = try XCTUnwrap(fixture["targets"]?.arrayValue).compactMap(\.intValue)
        XCTAssertEqual(fixture.batch.targets, targets)
        XCTAssertEqual(fixture.batch.cumulativeLengths, [0, 6, 17, 26])
        XCTAssertEqual(Array(fixture.batch.positions[4..<8]), [4, 5, 0, 1])
        let small = try PackedBatch(sequences: [[7, 8, 9], [4, 5]], labels: [[-100, 8, 9], [4, 5]])
        XCTAssertEqual(small.targets, [8, 9, -100, 5, -100])
        XCTAssertEqual(try PackedBatch(sequences: [[7, 8, 9]]).targets, [8, 9, -100])
        XCTAssertEqual(small.scoredTokenCount, 3)
        XCTAssertThrowsError(try PackedBatch(sequences: [[1, 2], []]))
        XCTAssertThrowsError(try PackedBatch(sequences: [[1, 2]], labels: [[1]]))
    }

    /// The SFT loss equals transformers' `model(input_ids, attention_mask, labels).loss` on the
    /// right-padded batch (mean CE over the shifted, unmasked labels): this pins the shift.
    func testSFTLossMatchesTransformers() throws {
        for name in ["tiny_llama_gqa", "tiny_phi"] {
            let fixture = try TrainingFixture(name)
            let out = try TrainingPass(model: fixture.model).logProbabilities(fixture.batch, adapter: nil, pool: .serial)
            let (loss, gradient) = CausalLMLoss.meanCrossEntropy(logProbabilities: out.logProbabilities, targets: fixture.batch.targets)
            let expected = try XCTUnwrap(fixture["sft", "transformers_loss"]?.doubleValue)
            XCTAssertEqual(Double(loss), expected, accuracy: 2e-6, name)
            let n = Float(fixture.batch.scoredTokenCount)
            XCTAssertEqual(gradient, fixture.batch.targets.map { $0 >= 0 ? -1 / n : 0 })
            // Unshifted targets (labels used as if already shifted) give another loss.
            let unshifted = try PackedBatch(sequences: try XCTUnwrap(fixture["sequences"]?.arrayValue).map { $0.arrayValue!.compactMap(\.intValue) },
                                            targets: try XCTUnwrap(fixture["labels"]?.arrayValue).map { $0.arrayValue!.compactMap(\.intValue) })
            let wrong = try TrainingPass(model: fixture.model).logProbabilities(unshifted, adapter: nil, pool: .serial)
            XCTAssertGreaterThan(abs(Double(CausalLMLoss.meanCrossEntropy(logProbabilities: wrong.logProbabilities,
                                                                           targets: unshifted.targets).loss) - expected), 1e-2)
        }
        let (l, g) = CausalLMLoss.meanCrossEntropy(logProbabilities: [-1, -3, 0], targets: [4, 5, -100], normalizer: 4)
        XCTAssertEqual(l, 1)
        XCTAssertEqual(g, [-0.25, -0.25, 0])
        XCTAssertEqual(CausalLMLoss.meanCrossEntropy(logProbabilities: [0], targets: [-100]).loss, 0)
    }

    /// A packed batch computes what its sequences compute one by one (positions restart, attention
    /// stays inside each sequence), for log p and for the summed gradients.
    func testPackedBatchEqualsSequencesOneByOne() throws {
        let fixture = try TrainingFixture("tiny_phi")
        let sequences = try XCTUnwrap(fixture["sequences"]?.arrayValue).map { $0.arrayValue!.compactMap(\.intValue) }
        let labels = try XCTUnwrap(fixture["labels"]?.arrayValue).map { $0.arrayValue!.compactMap(\.intValue) }
        let packedAdapter = try fixture.adapter("lora"), aloneAdapter = try fixture.adapter("lora")
        let pass = TrainingPass(model: fixture.model)
        let packed = try pass.forward(fixture.batch, adapter: packedAdapter, pool: .serial)
        try pass.backward(logProbabilityGradient: fixture.weights, pool: .serial)
        var logP: [Float] = [], start = 0
        for (ids, label) in zip(sequences, labels) {
            let one = try PackedBatch(sequences: [ids], labels: [label])
            logP += try pass.forward(one, adapter: aloneAdapter, pool: .serial).logProbabilities
            try pass.backward(logProbabilityGradient: Array(fixture.weights[start..<(start + ids.count)]), pool: .serial)
            start += ids.count
        }
        assertClose("packed vs alone log p", packed.logProbabilities, logP, atol: 1e-6, rtol: 1e-6)
        let p = packedAdapter.parameters, a = aloneAdapter.parameters
        // Summed over 26 tokens at once or 6 + 11 + 9: Float32 reassociation of gradients up to ≈ 6.
        assertClose("packed vs alone gradients", Array(UnsafeBufferPointer(start: p.gradients, count: p.count)),
                    Array(UnsafeBufferPointer(start: a.gradients, count: a.count)), atol: 1e-5, rtol: 1e-5)
    }

    // MARK: - Pass state

    /// A reference pass between forward and backward changes nothing; a second backward adds the
    /// same gradient again (accumulation); backward needs a forward.
    func testReferencePassAndAccumulation() throws {
        let fixture = try TrainingFixture("tiny_llama_gqa")
        let adapter = try fixture.adapter("lora")
        let pass = TrainingPass(model: fixture.model)
        XCTAssertThrowsError(try pass.backward(logProbabilityGradient: fixture.weights, pool: .serial))
        _ = try pass.forward(fixture.batch, adapter: adapter, pool: .serial)
        try pass.backward(logProbabilityGradient: fixture.weights, pool: .serial)
        let once = Array(UnsafeBufferPointer(start: adapter.parameters.gradients, count: adapter.parameters.count))
        adapter.parameters.zeroGradients()

        _ = try pass.forward(fixture.batch, adapter: adapter, pool: .serial)
        let other = try PackedBatch(sequences: [[3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]])
        _ = try pass.logProbabilities(other, adapter: nil, pool: .serial)
        try pass.backward(logProbabilityGradient: fixture.weights, pool: .serial)
        XCTAssertTrue(Array(UnsafeBufferPointer(start: adapter.parameters.gradients, count: adapter.parameters.count)) == once,
                      "a reference pass must not disturb the saved forward")
        try pass.backward(logProbabilityGradient: fixture.weights, pool: .serial)
        XCTAssertTrue(Array(UnsafeBufferPointer(start: adapter.parameters.gradients, count: adapter.parameters.count)) == once.map { 2 * $0 },
                      "gradients accumulate")
        XCTAssertThrowsError(try pass.backward(logProbabilityGradient: [1, 2], pool: .serial))
        XCTAssertThrowsError(try pass.forward(try PackedBatch(sequences: [[1, 256]]), adapter: nil, pool: .serial))
    }

    // MARK: - Quantized base (SmolLM2-135M Q4_1)

    func smolLM2() throws -> CausalLM {
        let path = ModelCache.fromEnvironment().path(for: .defaultModel)
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("SmolLM2 GGUF not cached at \(path)") }
        return try CausalLM(source: ModelSource(path: path))
    }

    /// On the real Q4_1 model the base stays frozen (full fine-tuning is refused) and LoRA trains:
    /// the backward's directional derivative along a random direction in all of A and B matches
    /// central finite differences of the forward (ε = 1e-3 relative to the parameters' size).
    func testLoRAOnAQuantizedBaseMatchesFiniteDifferences() throws {
        let model = try smolLM2()
        XCTAssertThrowsError(try model.trainableCopy()) { XCTAssertTrue("\($0)".contains("Q4_1") || "\($0)".contains("Q8_0"), "\($0)") }
        let adapter = try LoRAAdapter(configuration: LoRAConfiguration(r: 4, loraAlpha: 8, targetModules: .names(["q_proj", "v_proj", "down_proj"])),
                                      model: model, seed: 3)
        let p = adapter.parameters
        var rng = SeededGenerator(seed: 5)
        for tensor in p.tensors where tensor.name.hasSuffix("lora_B.weight") {
            for i in 0..<tensor.count { p.values[tensor.offset + i] = Float.random(in: -0.05...0.05, using: &rng) }
        }
        let batch = try PackedBatch(sequences: [[1, 504, 3458, 282, 4649, 314, 253, 1329], [28, 7050, 314, 260, 3575, 30, 2, 198, 11, 38]],
                                    labels: [[-100, -100, 3458, 282, 4649, 314, 253, 1329], [28, 7050, 314, 260, 3575, 30, 2, 198, 11, 38]])
        let weights = batch.targets.map { $0 >= 0 ? Float(1) : 0 }
        let pass = TrainingPass(model: model)
        let pool = ThreadPool(threads: 2)
        _ = try pass.forward(batch, adapter: adapter, pool: pool)
        try pass.backward(logProbabilityGradient: weights, pool: pool)
        let gradient = Array(UnsafeBufferPointer(start: p.gradients, count: p.count))
        XCTAssertTrue(gradient.allSatisfy(\.isFinite))
        let original = Array(UnsafeBufferPointer(start: p.values, count: p.count))
        let direction = original.map { $0 == 0 ? 0 : Float.random(in: -1...1, using: &rng) }
        var epsilon: Float = 0
        func loss(_ sign: Float) throws -> Double {
            for i in 0..<p.count { p.values[i] = original[i] + sign * epsilon * direction[i] }
            let out = try pass.logProbabilities(batch, adapter: adapter, pool: pool)
            return zip(out.logProbabilities, weights).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        }
        // Central differences D(h) = L' + c·h² + noise/h; Richardson's (4·D(h) − D(2h))/3 removes
        // the h² term. With h = 2e-3 (steps 5% of the parameters' size) the Float32 noise of the
        // loss (≈ 1e-5 over 30 layers) costs ≈ 0.2% and the remaining truncation less.
        func difference(_ h: Float) throws -> Double {
            epsilon = h
            return (try loss(1) - loss(-1)) / (2 * Double(h))
        }
        let numeric = (4 * (try difference(2e-3)) - (try difference(4e-3))) / 3
        let analytic = zip(gradient, direction).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        print("SmolLM2 Q4_1 directional derivative: analytic \(analytic), finite differences \(numeric)")
        XCTAssertEqual(numeric, analytic, accuracy: 1e-2 * abs(analytic))
    }
}

/// A seeded generator for reproducible test directions (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How an optimizer (FinchTraining) plugs in: A/B or all weights stored in its arena, and the DPO
/// helpers over a packed batch.
final class TrainingIntegrationTests: XCTestCase {
    /// An adapter whose values live in external memory computes the same as one with its own, and
    /// writes where the layout says (`parameterShapes`, offsets on 16-float boundaries as
    /// FinchTraining's `ParameterArena`).
    func testAdapterValuesInExternalMemory() throws {
        let fixture = try TrainingFixture("tiny_phi")
        let configuration = try fixture.loraConfiguration("lora")
        let shapes = try LoRAAdapter.parameterShapes(configuration: configuration, model: fixture.model)
        let owned = try LoRAAdapter(configuration: configuration, model: fixture.model, seed: 9)
        XCTAssertEqual(shapes.map(\.name), owned.parameters.tensors.map(\.name))
        XCTAssertEqual(shapes.map(\.shape), owned.parameters.tensors.map(\.shape))
        var offset = 0
        for tensor in owned.parameters.tensors {
            XCTAssertEqual(tensor.offset, offset)
            offset += (tensor.count + 15) / 16 * 16
        }
        let floats = TrainableParameters.floatCount(for: shapes)
        XCTAssertEqual(floats, offset)
        final class Box { var storage = [Float](repeating: .nan, count: 0) }
        let box = Box()
        box.storage = [Float](repeating: .nan, count: floats + 5)
        try box.storage.withUnsafeMutableBufferPointer { buffer in
            let external = try LoRAAdapter(configuration: configuration, model: fixture.model, seed: 9,
                                           values: ExternalValues(pointer: buffer.baseAddress!, count: buffer.count, owner: box))
            XCTAssertEqual(external.parameters.values, buffer.baseAddress!)
            XCTAssertTrue(Array(buffer.prefix(floats)) == Array(UnsafeBufferPointer(start: owned.parameters.values, count: floats)))
            for adapter in [owned, external] {
                for tensor in adapter.parameters.tensors {
                    try adapter.parameters.setValues(of: tensor.name, to: fixture.floats("lora.\(tensor.name)"))
                }
                let pass = TrainingPass(model: fixture.model)
                _ = try pass.forward(fixture.batch, adapter: adapter, pool: .serial)
                try pass.backward(logProbabilityGradient: fixture.weights, pool: .serial)
            }
            XCTAssertTrue(Array(UnsafeBufferPointer(start: owned.parameters.gradients, count: floats))
                          == Array(UnsafeBufferPointer(start: external.parameters.gradients, count: floats)))
            XCTAssertThrowsError(try LoRAAdapter(configuration: configuration, model: fixture.model, seed: 9,
                                                 values: ExternalValues(pointer: buffer.baseAddress!, count: floats - 1, owner: box)))
        }
    }

    func testTrainableCopyInExternalMemory() throws {
        let fixture = try TrainingFixture("tiny_llama_gqa")
        let shapes = try fixture.model.trainableParameterShapes()
        XCTAssertEqual(shapes.map(\.name), try XCTUnwrap(fixture["parameter_names"]?.arrayValue).compactMap(\.stringValue))
        let floats = TrainableParameters.floatCount(for: shapes)
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: floats)
        defer { storage.deallocate() }
        final class Owner {}
        let model = try fixture.model.trainableCopy(values: ExternalValues(pointer: storage, count: floats, owner: Owner()))
        let owned = try fixture.model.trainableCopy()
        XCTAssertTrue(Array(UnsafeBufferPointer(start: storage, count: floats))
                      == Array(UnsafeBufferPointer(start: owned.trainableParameters!.values, count: floats)))
        // An update written into the external memory is what the next forward reads.
        let before = try TrainingPass(model: model).logProbabilities(fixture.batch, adapter: nil, pool: .serial).logProbabilities
        let norm = try XCTUnwrap(model.trainableParameters?.tensor(named: "model.norm.weight"))
        storage[norm.offset] += 0.5
        let after = try TrainingPass(model: model).logProbabilities(fixture.batch, adapter: nil, pool: .serial).logProbabilities
        XCTAssertNotEqual(before, after)
    }

    /// DPO's sequence sums of completion log p and the per-token gradient from ∂L/∂S.
    func testSequenceSumsAndTokenGradient() throws {
        let batch = try PackedBatch(sequences: [[1, 2, 3, 4], [5, 6, 7]], labels: [[-100, -100, 3, 4], [5, 6, 7]])
        XCTAssertEqual(batch.targets, [-100, 3, 4, -100, 6, 7, -100])
        XCTAssertEqual(batch.sequenceSums([10, 1, 2, 20, 3, 4, 30]), [3, 7])
        XCTAssertEqual(batch.tokenGradient(sequenceGradients: [0.5, -2]), [0, 0.5, 0.5, 0, -2, -2, 0])
    }
}
