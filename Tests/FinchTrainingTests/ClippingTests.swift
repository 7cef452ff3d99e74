import FinchCore
import FinchFormats
import FinchTraining
import XCTest

/// Global-norm clipping against `torch.nn.utils.clip_grad_norm_` (torch 2.15) on deterministic
/// gradients the test regenerates: value_i = (((i·7919 + 13·t) mod 2001) − 1000) · 2⁻¹⁰ · scale
/// for tensor t (exact in Float32).
///
/// Measured relative differences between our Double norm and torch's float32 norm, which are
/// torch's own rounding (its norm against the float64 norm of the same values is printed by the
/// fixture): 1.1 M elements 2.19e-5, LoRA shapes (4 × 9216 + 4 × 3072) 9.8e-7, 69 elements
/// 3.2e-9, 3 tiny elements 2.8e-8. The tolerance per case is 1.5 × torch's own error, at least
/// 1e-7. The clipped values follow from the coefficient, so they carry the same relative difference.
final class ClippingTests: XCTestCase {
    static func gradient(count: Int, tensor: Int, scale: Float) -> [Float] {
        (0..<count).map { i in Float((i * 7919 + 13 * tensor) % 2001 - 1000) * 0x1p-10 * scale }
    }

    static func arena(sizes: [Int], scale: Float) throws -> ParameterArena {
        let arena = try ParameterArena(sizes.enumerated().map { ParameterSpec(name: "t\($0.offset)", shape: [$0.element]) })
        for (t, slice) in arena.slices.enumerated() {
            _ = arena.gradient(of: slice).update(fromContentsOf: gradient(count: slice.count, tensor: t, scale: scale))
        }
        return arena
    }

    func testNormsAndClippedValuesMatchTorch() throws {
        let cases = try Fixtures.section("norms").array()
        XCTAssertEqual(cases.count, 5)
        for case_ in cases {
            let sizes = try XCTUnwrap(case_["sizes"]).array().map { try $0.int() }
            let scale = Float(try XCTUnwrap(case_["scale"]).double())
            let maxNorm = try XCTUnwrap(case_["max_norm"]).double()
            let torchNorm = try XCTUnwrap(case_["total_norm"]).double()
            let exact = try XCTUnwrap(case_["float64_norm"]).double()
            let tolerance = max(1e-7, 1.5 * abs(torchNorm - exact) / exact)
            let arena = try Self.arena(sizes: sizes, scale: scale)
            let norm = try arena.clipGradientNorm(maxNorm: maxNorm, pool: ThreadPool(threads: 2))
            XCTAssertEqual(norm, exact, accuracy: 1e-13 * exact, "sizes \(sizes.prefix(3)): the Double norm is exact")
            XCTAssertEqual(norm, torchNorm, accuracy: tolerance * torchNorm, "sizes \(sizes.prefix(3)) vs torch")
            let heads = try XCTUnwrap(case_["clipped_head"]).array()
            for (slice, head) in zip(arena.slices, heads) {
                let expected = try head.array().map { Float(try $0.double()) }
                let ours = Array(arena.gradient(of: slice).prefix(expected.count))
                let bad = mismatches(ours, expected, atol: 0, rtol: Float(tolerance) + 2e-7)
                XCTAssertTrue(bad.isEmpty, "\(slice.name) of sizes \(sizes.prefix(3)) max_norm \(maxNorm): \(bad.prefix(3))")
            }
        }
    }

    func testUnclippedGradientsAreBitIdenticalAndTheNormIsThreadCountIndependent() throws {
        let sizes = [40_000, 17, 3]
        let one = try Self.arena(sizes: sizes, scale: 0x1p-8)
        let two = try Self.arena(sizes: sizes, scale: 0x1p-8)
        let before = Array(one.gradients)
        let a = try one.clipGradientNorm(maxNorm: 100, pool: .serial)
        let b = try two.clipGradientNorm(maxNorm: 100, pool: ThreadPool(threads: 2))
        XCTAssertEqual(a.bitPattern, b.bitPattern)
        XCTAssertEqual(Array(one.gradients), before, "norm ≤ max_norm: gradients × 1")
        // Clipped: the result has norm max_norm (up to the 1e-6 guard and Float rounding).
        let clipped = try one.clipGradientNorm(maxNorm: a / 4)
        XCTAssertEqual(clipped, a)
        XCTAssertEqual(one.gradientNorm(), a / 4, accuracy: 1e-6 * a)
    }

    func testZeroGradientsStayZero() throws {
        let arena = try ParameterArena([ParameterSpec(name: "w", shape: [5])])
        XCTAssertEqual(try arena.clipGradientNorm(maxNorm: 1), 0)
        XCTAssertTrue(arena.gradients.allSatisfy { $0 == 0 })
    }

    /// torch and transformers defaults (error_if_nonfinite=False): a NaN gradient makes the norm
    /// NaN and every gradient NaN; the norm is returned (TRL logs it as `grad_norm: nan`).
    func testNaNGradientPropagatesLikeTorch() throws {
        let arena = try ParameterArena([ParameterSpec(name: "a", shape: [4]), ParameterSpec(name: "b", shape: [3])])
        arena.gradients[0] = 1
        arena.gradients[17] = .nan  // b[1]
        let norm = try arena.clipGradientNorm(maxNorm: 1)
        XCTAssertTrue(norm.isNaN)
        for slice in arena.slices { XCTAssertTrue(arena.gradient(of: slice).allSatisfy(\.isNaN), slice.name) }
        XCTAssertTrue(arena.gradients[4..<16].allSatisfy { $0 == 0 }, "padding untouched")
    }

    func testInfiniteGradientLikeTorch() throws {
        let arena = try ParameterArena([ParameterSpec(name: "a", shape: [2])])
        arena.gradients[0] = .infinity
        arena.gradients[1] = 3
        XCTAssertEqual(try arena.clipGradientNorm(maxNorm: 1), .infinity)
        XCTAssertTrue(arena.gradients[0].isNaN, "inf × 0")
        XCTAssertEqual(arena.gradients[1], 0, "coefficient 1/(inf) = 0")
    }

    func testNonfiniteErrorNamesTheSliceAndLeavesGradients() throws {
        let arena = try ParameterArena([ParameterSpec(name: "layers.0.q_proj.lora_A.weight", shape: [4]),
                                        ParameterSpec(name: "layers.0.q_proj.lora_B.weight", shape: [3])])
        arena.gradients[0] = 2
        arena.gradients[18] = -.infinity
        assertTrainingError(try arena.clipGradientNorm(maxNorm: 1, errorIfNonfinite: true),
                            subject: "layers.0.q_proj.lora_B.weight", contains: "inf")
        XCTAssertEqual(arena.gradients[0], 2)
    }
}
