/// Lane conversions for the linear-layer kernels, written element by element.
///
/// The standard library's generic conversions (`SIMD8<Int32>(truncatingIfNeeded:)`,
/// `SIMD4<Float>(_:)`, …) compile to the right instructions only when the optimizer inlines their
/// specializations, and in large kernels it sometimes does not: each becomes a call and, worse,
/// the `pmaddwd` pattern below is lost (seen in the Q4_1 decode loop). Element-wise code has no
/// call to lose; LLVM turns each of these into the single SSE2 sequence noted on it (baseline
/// x86-64, checked in the disassembly of a release build).
enum QuantizedLanes {
    /// `cvtdq2ps`.
    @inline(__always)
    static func float(_ v: SIMD4<Int32>) -> SIMD4<Float> {
        SIMD4(Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]))
    }

    /// Two `cvtdq2ps`.
    @inline(__always)
    static func float(_ v: SIMD8<Int32>) -> SIMD8<Float> {
        var r = SIMD8<Float>()
        for i in 0..<8 { r[i] = Float(v[i]) }
        return r
    }

    /// Zero extension, `punpcklbw` + `punpck[lh]wd` with zero.
    @inline(__always)
    static func int32(_ v: SIMD8<UInt8>) -> SIMD8<Int32> {
        var r = SIMD8<Int32>()
        for i in 0..<8 { r[i] = Int32(v[i]) }
        return r
    }

    /// Sign extension, `punpcklbw` + `punpck[lh]wd` + `psrad 24`.
    @inline(__always)
    static func int32(_ v: SIMD8<Int8>) -> SIMD8<Int32> {
        var r = SIMD8<Int32>()
        for i in 0..<8 { r[i] = Int32(v[i]) }
        return r
    }

    /// Sign extension, `punpck[lh]wd` + `psrad 16`.
    @inline(__always)
    static func int32(_ v: SIMD8<Int16>) -> SIMD8<Int32> {
        var r = SIMD8<Int32>()
        for i in 0..<8 { r[i] = Int32(v[i]) }
        return r
    }

    /// Zero extension, `punpcklbw` with zero.
    @inline(__always)
    static func uint16(_ v: SIMD8<UInt8>) -> SIMD8<UInt16> {
        var r = SIMD8<UInt16>()
        for i in 0..<8 { r[i] = UInt16(v[i]) }
        return r
    }

    /// Zero extension, `punpck[lh]wd` with zero.
    @inline(__always)
    static func uint32(_ v: SIMD8<UInt16>) -> SIMD8<UInt32> {
        var r = SIMD8<UInt32>()
        for i in 0..<8 { r[i] = UInt32(v[i]) }
        return r
    }

    /// Zero extension of lanes 0..<4 and 4..<8, `punpcklwd`/`punpckhwd` with zero.
    @inline(__always)
    static func uint32Halves(_ v: SIMD8<UInt16>) -> (SIMD4<UInt32>, SIMD4<UInt32>) {
        (SIMD4(UInt32(v[0]), UInt32(v[1]), UInt32(v[2]), UInt32(v[3])),
         SIMD4(UInt32(v[4]), UInt32(v[5]), UInt32(v[6]), UInt32(v[7])))
    }

    /// The low 16 bits of each lane, `pslld`/`psrad 16` + `packssdw`.
    @inline(__always)
    static func int16(truncating v: SIMD8<Int32>) -> SIMD8<Int16> {
        var r = SIMD8<Int16>()
        for i in 0..<8 { r[i] = Int16(truncatingIfNeeded: v[i]) }
        return r
    }

    /// `a[2k]·b[2k] + a[2k+1]·b[2k+1]` in Int32 lanes: one `pmaddwd`. Exact unless both products
    /// of a lane are (−32768)², which the kernels never produce (weight codes satisfy |w| ≤ 128).
    @inline(__always)
    static func multiplyAdd(_ a: SIMD8<Int16>, _ b: SIMD8<Int16>) -> SIMD4<Int32> {
        let p = int32(a) &* int32(b)
        return SIMD4(p[0] &+ p[1], p[2] &+ p[3], p[4] &+ p[5], p[6] &+ p[7])
    }
}
