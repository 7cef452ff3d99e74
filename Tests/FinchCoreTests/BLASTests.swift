import FinchCore
import XCTest

/// sgemm wrappers against a plain triple loop in Double.
final class BLASTests: XCTestCase {
    func testMatmulTransposedBAndMatmulMatchNaiveLoops() {
        var rng = SystemRandomNumberGenerator()
        let m = 7, n = 13, k = 29
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let bT = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &rng) } // (n, k)
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &rng) }  // (k, n)
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        BLAS.matmulTransposedB(m: m, n: n, k: k, a: a, b: bT, c: &c1)
        BLAS.matmul(m: m, n: n, k: k, a: a, b: b, c: &c2)
        for i in 0..<m {
            for j in 0..<n {
                var s1 = 0.0, s2 = 0.0
                for p in 0..<k {
                    s1 += Double(a[i * k + p]) * Double(bT[j * k + p])
                    s2 += Double(a[i * k + p]) * Double(b[p * n + j])
                }
                // Float32 accumulation of 29 products of magnitude ≤ 1: error well below 1e-5.
                XCTAssertEqual(Double(c1[i * n + j]), s1, accuracy: 1e-5)
                XCTAssertEqual(Double(c2[i * n + j]), s2, accuracy: 1e-5)
            }
        }
    }
}
