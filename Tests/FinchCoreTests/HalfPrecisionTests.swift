import FinchCore
import XCTest

/// The hand-written conversions are checked against Swift's own `Float16`, an independent
/// implementation of IEEE binary16 (round to nearest even), over every half bit pattern and over
/// many floats, including the rounding boundaries.
final class HalfPrecisionTests: XCTestCase {
    func testEveryHalfConvertsExactlyLikeFloat16() {
        for bits in 0...UInt16.max {
            let ours = HalfPrecision.float(fromHalf: bits)
            let swift = Float(Float16(bitPattern: bits))
            if swift.isNaN {
                XCTAssertTrue(ours.isNaN, "half 0x\(String(bits, radix: 16)) should be NaN")
            } else {
                XCTAssertEqual(ours.bitPattern, swift.bitPattern, "half 0x\(String(bits, radix: 16))")
            }
        }
    }

    func testFloatToHalfRoundsLikeFloat16() {
        var rng = SystemRandomNumberGenerator()
        var samples: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e-8, 5.96e-8, 2.98e-8, 2.9802322e-8, 6.1e-5,
                                .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        // Halfway cases between adjacent halves, in the normal and subnormal ranges.
        for bits in stride(from: UInt16(0), to: 0x7BFF, by: 7) {
            let a = Float(Float16(bitPattern: bits)), b = Float(Float16(bitPattern: bits + 1))
            samples += [(a + b) / 2, -(a + b) / 2, a.nextUp, b.nextDown]
        }
        for _ in 0..<200_000 {
            samples.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng)))
        }
        for x in samples where !x.isNaN {
            XCTAssertEqual(HalfPrecision.half(from: x), Float16(x).bitPattern, "float \(x) (0x\(String(x.bitPattern, radix: 16)))")
        }
        XCTAssertTrue(HalfPrecision.float(fromHalf: HalfPrecision.half(from: .nan)).isNaN)
    }

    func testBFloat16RoundsToNearestEven() {
        // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties go to the even mantissa (1.0).
        XCTAssertEqual(HalfPrecision.bfloat16(from: 1 + 0x1p-8), 0x3F80)
        // 1 + 3·2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even): rounds up.
        XCTAssertEqual(HalfPrecision.bfloat16(from: 1 + 3 * 0x1p-8), 0x3F82)
        XCTAssertEqual(HalfPrecision.bfloat16(from: 1 + 0x1p-8 + 0x1p-20), 0x3F81)
        XCTAssertEqual(HalfPrecision.bfloat16(from: -2.5), 0xC020)
        XCTAssertEqual(HalfPrecision.bfloat16(from: .infinity), 0x7F80)
        let nan = HalfPrecision.bfloat16(from: Float(bitPattern: 0x7F80_0001)) // signalling NaN → quiet
        XCTAssertTrue(HalfPrecision.float(fromBFloat16: nan).isNaN)
        XCTAssertEqual(nan & 0x0040, 0x0040)
        for bits in stride(from: UInt16(0), to: UInt16.max, by: 3) where !HalfPrecision.float(fromBFloat16: bits).isNaN {
            XCTAssertEqual(HalfPrecision.bfloat16(from: HalfPrecision.float(fromBFloat16: bits)), bits)
        }
    }
}
