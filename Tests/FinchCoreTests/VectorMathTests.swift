import FinchCore
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
