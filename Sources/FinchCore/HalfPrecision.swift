/// Bit-level conversions between Float32 and the 16-bit float formats used by checkpoints.
///
/// Done by hand rather than through `Float16` so the same code builds where `Float16` is not
/// available (Intel macOS), and so the rounding rules are visible: IEEE binary16 and bfloat16 both
/// round to nearest, ties to even; NaNs stay NaN (quiet). The rules follow the `gguf` Python
/// package (`quants.py`, BF16) and numpy's `npy_floatbits_to_halfbits`.
public enum HalfPrecision {
    /// IEEE binary16 bits → Float32 (exact: every half is representable as a float).
    @inline(__always)
    public static func float(fromHalf h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        var mantissa = UInt32(h & 0x03FF)
        if exponent == 0x1F {
            // Inf or NaN: keep the payload, shifted into the float mantissa.
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // Subnormal half: normalise. value = mantissa · 2^-24.
            var e: UInt32 = 127 - 15 + 1
            while mantissa & 0x0400 == 0 {
                mantissa <<= 1
                e -= 1
            }
            mantissa &= 0x03FF
            return Float(bitPattern: sign | (e << 23) | (mantissa << 13))
        }
        return Float(bitPattern: sign | ((exponent + 127 - 15) << 23) | (mantissa << 13))
    }

    /// Float32 → IEEE binary16 bits, round to nearest even; overflow gives ±Inf, NaN stays a quiet NaN.
    public static func half(from f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        let mantissa = bits & 0x007F_FFFF
        if exponent == 0xFF {
            if mantissa == 0 { return sign | 0x7C00 }
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: mantissa >> 13)
        }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 0x1F { return sign | 0x7C00 }
        if halfExponent <= 0 {
            // Result is subnormal (or zero): shift the full significand right, rounding to even.
            if halfExponent < -10 { return sign }
            let significand = mantissa | 0x0080_0000
            let shift = UInt32(14 - halfExponent)
            var result = significand >> shift
            let remainder = significand & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            if remainder > halfway || (remainder == halfway && (result & 1) == 1) { result += 1 }
            return sign | UInt16(result)
        }
        var result = UInt32(halfExponent) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && (result & 1) == 1) {
            result += 1 // may carry into the exponent, which correctly rounds up to the next binade or Inf
        }
        return sign | UInt16(result)
    }

    /// bfloat16 bits → Float32: bfloat16 is the top half of a float's bit pattern.
    @inline(__always)
    public static func float(fromBFloat16 b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// Float32 → bfloat16 bits, round to nearest even; NaNs are forced quiet (as `gguf`'s BF16 and torch do).
    @inline(__always)
    public static func bfloat16(from f: Float) -> UInt16 {
        var bits = f.bitPattern
        if bits & 0x7FFF_FFFF > 0x7F80_0000 {
            bits = (bits & 0xFFFF_0000) | (64 << 16)
            return UInt16(bits >> 16)
        }
        let rounded = (UInt64(bits) + UInt64(0x7FFF + ((bits >> 16) & 1))) >> 16
        return UInt16(truncatingIfNeeded: rounded)
    }
}
