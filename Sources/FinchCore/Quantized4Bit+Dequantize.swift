/// Dequantization, bit-identical to bitsandbytes' `dequantize_4bit` as its reference kernel computes
/// it (`backends/default/ops.py`, and CUDA's `kDequantizeBlockwise`): element i is
/// `code[nibble(i)] · absmax[i / 64]`, one Float32 product, with the flattened block of the element
/// (blocks run across rows when a row is not a multiple of 64 long).
///
/// bitsandbytes 0.50.2's native CPU kernel (what `dequantize_4bit` calls on a CPU for an even last
/// dimension) disagrees with its own quantizer in two cases: for row lengths that are a multiple
/// of 16 but not of 64 (seen: 32, 48, 80, 96, 160, 224, 288) it reads the wrong blocks' absmax, and
/// on other lengths that are not a multiple of 64 (its scalar path; seen: 100, 200) it returns −0
/// for FP4's code 8, where the code table holds +0. Finch follows the reference; for row lengths
/// that are a multiple of 64 (every real model's) all of them agree.
extension Quantized4Bit {
    /// Dequantizes the flattened elements `range` into `out` (`range.count` values).
    public func dequantize(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= count,
                     "Quantized4Bit.dequantize: \(range) is outside 0..<\(count)")
        guard let bytes = packed.baseAddress else { return }
        let pairs = UnsafePointer(self.pairs.pointer)
        var i = range.lowerBound
        var o = out
        while i < range.upperBound {
            let block = i / Self.blockSize
            let end = min((block + 1) * Self.blockSize, range.upperBound)
            let s = scale(block: block)
            if i & 1 == 1 {
                // The low nibble of byte i / 2.
                o.pointee = pairs[Int(bytes[i >> 1] & 0x0F)].y * s
                i += 1
                o += 1
            }
            let pairCount = (end - i) >> 1
            Self.dequantizePairs(bytes + (i >> 1), count: pairCount, scale: s, pairs: pairs, into: o)
            i += 2 * pairCount
            o += 2 * pairCount
            if i < end {
                // The high nibble of byte i / 2 (the range ends inside a byte).
                o.pointee = pairs[Int(bytes[i >> 1])].x * s
                i += 1
                o += 1
            }
        }
    }

    /// The whole tensor dequantized (row-major, `count` values).
    public func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress { dequantize(0..<count, into: base) }
            initialized = count
        }
    }

    /// `count` bytes → `2·count` values `code·scale`, eight bytes (16 values) per step: each byte's
    /// two code values are one 8-byte load from the pair table, assembled into one 16-lane vector,
    /// scaled and stored. Swift offers no variable lane shuffle (`vpermps`), and LLVM did not form
    /// one from lane-by-lane table lookups or from select trees (it scalarized them), so the
    /// 16-entry table is applied by loads: ≈ 0.17 ns per weight on one core here, against
    /// ≈ 0.19 ns for scaling and storing each pair separately (a micro-benchmark, 1536×576).
    @inline(__always)
    static func dequantizePairs(_ bytes: UnsafePointer<UInt8>, count: Int, scale: Float,
                                pairs: UnsafePointer<SIMD2<Float>>, into out: UnsafeMutablePointer<Float>) {
        let destination = UnsafeMutableRawPointer(out)
        let s16 = SIMD16<Float>(repeating: scale)
        var k = 0
        while k + 8 <= count {
            let word = UnsafeRawPointer(bytes + k).loadUnaligned(as: UInt64.self)
            @inline(__always) func pair(_ j: Int) -> SIMD2<Float> { pairs[Int(truncatingIfNeeded: (word >> UInt64(8 * j)) & 0xFF)] }
            let values = SIMD16(lowHalf: SIMD8(lowHalf: SIMD4(lowHalf: pair(0), highHalf: pair(1)), highHalf: SIMD4(lowHalf: pair(2), highHalf: pair(3))),
                                highHalf: SIMD8(lowHalf: SIMD4(lowHalf: pair(4), highHalf: pair(5)), highHalf: SIMD4(lowHalf: pair(6), highHalf: pair(7))))
            destination.storeBytes(of: values * s16, toByteOffset: 8 * k, as: SIMD16<Float>.self)
            k += 8
        }
        let s = SIMD2<Float>(repeating: scale)
        while k < count {
            destination.storeBytes(of: pairs[Int(bytes[k])] * s, toByteOffset: 8 * k, as: SIMD2<Float>.self)
            k += 1
        }
    }
}
