/// Vectorized elementary functions for the elementwise kernels (16 lanes: one AVX-512 register
/// when FinchCore is compiled for the host CPU).
public enum VectorMath {
    /// e^x for 16 lanes, within 2 ulp of the correctly rounded result on [−87.3, 88.7] (tested
    /// against Double `exp` in `VectorMathTests`). Cody–Waite reduction x = n·ln 2 + r with ln 2 split
    /// in two, and Cephes' degree-6 polynomial for e^r on |r| ≤ ln 2 / 2 (S. L. Moshier, Cephes
    /// `expf.c`); 2ⁿ is built in the exponent bits. Below −87.3 the result is ≈ 1.2e−38 instead of
    /// a subnormal or 0, above 88.7 ≈ 3.4e38 instead of +∞ (both only where e^x's own value is
    /// beyond Float32's normal range); NaN stays NaN.
    @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        // Comparisons and selects (`clamped` and `pointwiseMin` are generic and not inlined).
        var clamped = x
        clamped.replace(with: -87.33654, where: x .< -87.33654)
        clamped.replace(with: 88.72283, where: x .> 88.72283)
        // n = round(x / ln 2) with the 1.5·2²³ trick (exact for |n| < 2²²).
        let shifter: Float = 12_582_912
        let shifted = clamped * 1.442695040888963 + shifter
        let n = shifted - shifter
        var r = clamped - n * 0.693359375
        r = r - n * -2.12194440e-4
        let r2 = r * r
        var p = SIMD16<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        var y = p * r2 + r + 1
        // 2ⁿ from the low bits of `shifted` (n in two's complement). n reaches 128 near the top
        // of the range, one past the largest exponent: there 2·y·2ⁿ⁻¹ is used instead (exact).
        let high = n .> 0
        y.replace(with: y + y, where: high)
        var biased = unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &- 0x4B40_0000 &+ 127
        biased.replace(with: biased &- 1, where: high)
        let result = y * unsafeBitCast(biased &<< 23, to: SIMD16<Float>.self)
        return result.replacing(with: x, where: x .!= x)
    }
}
