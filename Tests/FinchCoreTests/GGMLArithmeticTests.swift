import FinchCore
import Foundation
import XCTest

/// `LinearWeight.Arithmetic.ggml`: Q8_0 weights times activations rounded as ggml's x86
/// `quantize_row_q8_0` does (scale f16(max|x|/127), codes round-to-even(x·127/max|x|)), at one
/// token and at prefill sizes, against that formula evaluated in Double here.
final class GGMLArithmeticTests: XCTestCase {
    func testQ8_0ProductsUseGGMLsEightBitActivations() {
        var rng = SplitMix64(seed: 41)
        let out = 24, inFeatures = 96
        let w = (0..<(out * inFeatures)).map { _ in Float.random(in: -1...1, using: &rng) }
        let rowBytes = inFeatures / 32 * 34
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: out * rowBytes, alignment: 64)
        defer { bytes.deallocate() }
        w.withUnsafeBufferPointer { GGMLType.q8_0.quantize($0.baseAddress!, count: w.count, into: bytes) }
        var weight = LinearWeight(outFeatures: out, inFeatures: inFeatures, storage: .ggml(.q8_0, UnsafeRawPointer(bytes)), owner: nil)
        weight.arithmetic = .ggml

        func reference(_ x: ArraySlice<Float>) -> [Double] {
            let x = Array(x)
            var result = [Double](repeating: 0, count: out)
            for r in 0..<out {
                for b in 0..<(inFeatures / 32) {
                    let block = bytes + r * rowBytes + b * 34
                    let dw = Double(HalfPrecision.float(fromHalf: block.loadUnaligned(as: UInt16.self)))
                    let xs = x[(32 * b)..<(32 * b + 32)]
                    let amax = xs.map(abs).max()!
                    let dx = Double(HalfPrecision.float(fromHalf: HalfPrecision.half(from: amax / 127)))
                    let scale = amax > 0 ? 127 / amax : 0
                    var sum = 0
                    for j in 0..<32 {
                        let q = Int((xs[32 * b + j] * scale).rounded(.toNearestOrEven))
                        sum += Int(Int8(bitPattern: block.load(fromByteOffset: 2 + j, as: UInt8.self))) * q
                    }
                    result[r] += dw * dx * Double(sum)
                }
            }
            return result
        }

        for tokens in [1, 20] { // 20 is past every decode-token limit: prefill goes the same way
            let x = (0..<(tokens * inFeatures)).map { _ in Float.random(in: -2...2, using: &rng) }
            var y = [Float](repeating: 0, count: tokens * out)
            weight.forward(x, tokens: tokens, into: &y, pool: .serial)
            var float = weight
            float.arithmetic = .float32
            var yFloat = [Float](repeating: 0, count: tokens * out)
            float.forward(x, tokens: tokens, into: &yFloat, pool: .serial)
            var worst = 0.0, worstFloat = 0.0
            for t in 0..<tokens {
                let want = reference(x[(t * inFeatures)..<((t + 1) * inFeatures)])
                for r in 0..<out {
                    worst = max(worst, abs(Double(y[t * out + r]) - want[r]))
                    worstFloat = max(worstFloat, abs(Double(yFloat[t * out + r]) - want[r]))
                }
            }
            XCTAssertLessThanOrEqual(worst, 1e-5, "tokens \(tokens): Float32 summation order only")
            XCTAssertGreaterThan(worstFloat, 1e-3, "tokens \(tokens): the 8-bit rounding must be visible against Float32 activations")
        }
    }
}
