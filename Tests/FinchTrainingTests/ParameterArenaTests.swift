import FinchFormats
import FinchTraining
import XCTest

final class ParameterArenaTests: XCTestCase {
    /// 25 parameter names of a module tree (LoRA, biases, custom RMSNorm classes, torch LayerNorms
    /// named and unnamed as such, names that merely contain "norm"): the flag must equal
    /// membership in `Trainer.get_decay_parameter_names` (transformers 5.24).
    func testWeightDecayRuleMatchesTransformers() throws {
        let rows = try Fixtures.section("decay").array()
        XCTAssertEqual(rows.count, 25)
        var decayed = 0
        for row in rows {
            let name = try XCTUnwrap(row["name"]?.stringValue)
            let spec = ParameterSpec(name: name, shape: [1], inTorchLayerNorm: try XCTUnwrap(row["in_torch_layernorm"]?.boolValue))
            XCTAssertEqual(spec.appliesWeightDecay, try XCTUnwrap(row["decays"]?.boolValue), name)
            decayed += spec.appliesWeightDecay ? 1 : 0
        }
        XCTAssertEqual(decayed, 9, "the fixture exercises both outcomes")
    }

    func testLayoutAlignsSlicesAndStartsAtZero() throws {
        let arena = try ParameterArena([
            ParameterSpec(name: "a.lora_A.weight", shape: [4, 37]),
            ParameterSpec(name: "a.bias", shape: [29]),
            ParameterSpec(name: "n.weight", shape: [16], appliesWeightDecay: false),
        ])
        XCTAssertEqual(arena.slices.map(\.offset), [0, 160, 192])
        XCTAssertEqual(arena.slices.map(\.count), [148, 29, 16])
        XCTAssertEqual(arena.slices.map(\.appliesWeightDecay), [true, false, false])
        XCTAssertEqual(arena.floatsPerBuffer, 208)
        XCTAssertEqual(arena.parameterCount, 193)
        XCTAssertEqual(arena.slice(named: "a.bias")?.shape, [29])
        XCTAssertNil(arena.slice(named: "missing"))
        for buffer in [arena.values, arena.gradients, arena.firstMoments, arena.secondMoments] {
            XCTAssertEqual(buffer.count, 208)
            XCTAssertTrue(buffer.allSatisfy { $0 == 0 })
            XCTAssertEqual(Int(bitPattern: buffer.baseAddress) % 64, 0, "64-byte aligned buffers")
        }
    }

    func testGradientAccumulationSumsScaledMicroBatches() throws {
        let arena = try ParameterArena([ParameterSpec(name: "w", shape: [3])])
        let slice = try XCTUnwrap(arena.slice(named: "w"))
        let first: [Float] = [1, 2, 3], second: [Float] = [0.5, -4, 1e-3]
        first.withUnsafeBufferPointer { arena.accumulateGradient($0, into: slice, scale: 0.5) }
        second.withUnsafeBufferPointer { arena.accumulateGradient($0, into: slice, scale: 0.5) }
        XCTAssertEqual(Array(arena.gradient(of: slice)), [0.75, -1, 1.5 + 0.5 * (1e-3 as Float)])
        arena.zeroGradients()
        XCTAssertEqual(Array(arena.gradient(of: slice)), [0, 0, 0])
    }

    func testBadSpecsNameTheTensor() {
        assertTrainingError(try ParameterArena([ParameterSpec(name: "w", shape: [2]), ParameterSpec(name: "w", shape: [3])]),
                            subject: "w", contains: "twice")
        assertTrainingError(try ParameterArena([ParameterSpec(name: "w", shape: [2, 0])]), subject: "w", contains: "shape")
        assertTrainingError(try ParameterArena([ParameterSpec(name: "w", shape: [])]), subject: "w", contains: "shape")
    }
}
