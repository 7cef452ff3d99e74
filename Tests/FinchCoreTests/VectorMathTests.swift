@testable import FinchCore
import Foundation
import XCTest

final class VectorMathTests: XCTestCase {
    /// `VectorMath.exp` within 2 ulp of Double `exp` rounded to Float over the normal range, on a
    /// dense sweep plus the range ends; the clamping and NaN behaviour its doc comment states.
    func testExpIsWithinTwoUlp() {
        var worst: Float = 0
        var inputs: [Float] = stride(from: Float(-87.3), through: 88.7, by: 0.000731).map { $0 }
        inputs += [0, -0, 1, -1, 1e-30, -1e-30, 88.72, -87.33, 0.5 * Float(M_LN2), -0.5 * Float(M_LN2)]
        while inputs.count % 16 != 0 { inputs.append(0.25) }
        for start in stride(from: 0, to: inputs.count, by: 16) {
            let v = SIMD16<Float>(inputs[start..<(start + 16)])
            let e = VectorMath.exp(v)
            for lane in 0..<16 {
                let want = Float(Foundation.exp(Double(v[lane])))
                let ulps = abs(e[lane] - want) / want.ulp
                worst = max(worst, ulps)
                if ulps > 2 { XCTFail("exp(\(v[lane])) = \(e[lane]), want \(want) (\(ulps) ulp)"); return }
            }
        }
        XCTAssertGreaterThan(worst, 0, "the sweep should see some rounding difference")
        let edge = VectorMath.exp(SIMD16<Float>(-200, -88, 89, 200, .nan, -.nan, .infinity, -.infinity, 0, 0, 0, 0, 0, 0, 0, 0))
        XCTAssertLessThan(edge[0], 1.3e-38)
        XCTAssertLessThan(edge[1], 1.3e-38)
        XCTAssertGreaterThan(edge[2], 3e38)
        XCTAssertGreaterThan(edge[3], 3e38)
        XCTAssertTrue(edge[4].isNaN && edge[5].isNaN)
        XCTAssertGreaterThan(edge[6], 3e38)
        XCTAssertLessThan(edge[7], 1.3e-38)
    }
}

/// The row reductions RMSNorm and packed attention use (16 lane sums, then the tail), against
/// Double sums, at lengths around the 16-lane boundary and the models' widths.
final class VectorMathRowTests: XCTestCase {
    func testRowReductionsMatchDoubleSums() {
        var rng = SplitMix64(seed: 11)
        for n in [1, 7, 15, 16, 17, 31, 33, 64, 141, 576, 1537] {
            let a = (0..<n).map { _ in Float.random(in: -3...3, using: &rng) }
            let b = (0..<n).map { _ in Float.random(in: -3...3, using: &rng) }
            let c = (0..<n).map { _ in Float.random(in: -3...3, using: &rng) }
            // Float32 sums of n terms: relative error ≲ n·ε of the sum of magnitudes.
            let bound = { (magnitude: Double) in Double(n) * 1.2e-7 * magnitude + 1e-30 }
            let squares = a.reduce(0.0) { $0 + Double($1) * Double($1) }
            XCTAssertEqual(Double(VectorMath.sumOfSquares(a, count: n)), squares, accuracy: bound(squares), "Σx², n \(n)")
            let dot = (0..<n).reduce(0.0) { $0 + Double(a[$1] * b[$1]) * Double(c[$1]) }
            let dotMagnitude = (0..<n).reduce(0.0) { $0 + abs(Double(a[$1] * b[$1]) * Double(c[$1])) }
            XCTAssertEqual(Double(VectorMath.dot(a, b, c, count: n)), dot, accuracy: bound(dotMagnitude), "Σabc, n \(n)")

            var row = a
            let shift = a.max()!
            let sum = row.withUnsafeMutableBufferPointer { VectorMath.exponentiate($0.baseAddress!, minus: shift, count: n) }
            for i in 0..<n {
                let want = Float(Foundation.exp(Double(a[i] - shift)))
                XCTAssertLessThanOrEqual(abs(row[i] - want), 2 * want.ulp, "exp in place, n \(n), element \(i)")
            }
            let written = row.reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(Double(sum), written, accuracy: bound(written), "returned sum, n \(n)")
            XCTAssertGreaterThanOrEqual(sum, 1, "the maximum's own term is e⁰ = 1")
        }
    }
}
