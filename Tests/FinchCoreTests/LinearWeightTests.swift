#if canImport(CBLAS)
import CBLAS
#endif
import Dispatch
import FinchCore
import XCTest

/// `LinearWeight` against a plain reference: the whole matrix dequantized with
/// `GGMLType.dequantize` (the bit-exact scalar reference), then Float64 loops.
///
/// Tolerances, per output element (u = 2^-24, the Float32 unit roundoff):
/// - **Float32 paths** (F32/F16/BF16 weights, `.float32` arithmetic, every call with more than
///   `decodeTokenLimit` tokens, `backwardInput`): `|y − ref| ≤ 2·(n + 4)·u·Σ_j |w_j·x_j|`, the
///   classical worst-case bound for a Float32 dot product of length n (any summation order, with or
///   without FMA) with a factor 2 of margin. The weights themselves are exact: dequantization is
///   bit-identical to the reference.
/// - **Rounded activations** (`.quantizedActivations`, block-quantized weights, few tokens): the
///   kernel replaces `x_j` by `dx_g·q_j` with `|x_j − dx_g·q_j| ≤ dx_g/2`, `dx_g = max_g|x|/32767`,
///   in the scaled part of each weight only (`w_j = o_g + s_g·c_j`; the offset `o_g` — Q4_1/Q5_1's
///   `m`, the K-quants' `−dmin·m_j` — multiplies the exact sum of x). So
///   `|y − ref| ≤ 1.001·Σ_j |w_j − o_g|·dx_g/2 + 2·(groups + 16)·u·Σ_j (|w_j − o_g| + |o_g|)·(|x_j| + dx_g)`,
///   the second term covering the Float32 scaling and accumulation of the exact integer group sums.
///   This is ggml's error model (its `q8_0`/`q8_1`/`q8_K` activations round the same way, to 8
///   bits: `max_g|x|/127`; Finch keeps 16 bits, so the first term is 258× smaller). The integer
///   kernels are also run on activations the rounding represents exactly (`x = k·2^e`), checked
///   against the Float32 term alone, so a lane-order or bit-unpacking mistake cannot hide in the
///   rounding bound.
///
/// `FINCH_TOLERANCE_REPORT=1` prints each check's worst error / tolerance ratio.
final class LinearWeightTests: XCTestCase {
    private static let allTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]
    private static let tokenCounts = [1, 2, 3, 5, 64, 130]

    func testForwardBackwardAndRowsForEveryStorageType() {
        var rng = SplitMix64(seed: 0x5EED)
        let pool = ThreadPool(threads: 2)
        for type in Self.allTypes {
            let fixture = Fixture(type: type, out: 67, in: 512, rng: &rng)
            for variant in fixture.variants() {
                check(fixture, variant, tokenCounts: Self.tokenCounts, pool: pool, rng: &rng)
            }
            checkRows(fixture)
        }
    }

    func testOddShapesThreadCountsAndSeveralPanels() {
        var rng = SplitMix64(seed: 0x0DD)
        for type in Self.allTypes {
            let inFeatures = type.blockSize == 256 ? 256 : (type.blockSize == 32 ? 96 : 37)
            let fixture = Fixture(type: type, out: 13, in: inFeatures, rng: &rng)
            for threads in [1, 3] {
                for variant in fixture.variants() {
                    check(fixture, variant, tokenCounts: [1, 2, 5, 9], pool: ThreadPool(threads: threads), rng: &rng)
                }
            }
            checkRows(fixture)
        }
        // 4111 × 256 Float32 is more than the 4 MiB panel budget: two panels, the second of 15 rows.
        for type in [GGMLType.q4_1, .q6_K] {
            let fixture = Fixture(type: type, out: 4111, in: 256, rng: &rng)
            check(fixture, fixture.variants()[0], tokenCounts: [1, 64], pool: ThreadPool(threads: 3), rng: &rng)
        }
    }

    /// With OpenBLAS set to one thread, the BLAS paths (F32 weights, panels + `sgemm`, both
    /// directions) split their work over the pool themselves: same checks, odd shapes and pools.
    func testSingleThreadedBLASSplitsWorkOverThePool() throws {
        #if canImport(CBLAS)
        let previous = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(previous) }
        var rng = SplitMix64(seed: 0xB1A5)
        for type in [GGMLType.f32, .f16, .q4_1, .q8_0, .q6_K] {
            let inFeatures = type.blockSize == 256 ? 512 : (type.blockSize == 32 ? 96 : 37)
            let fixture = Fixture(type: type, out: 67, in: inFeatures, rng: &rng)
            for threads in [2, 3] {
                check(fixture, fixture.variants()[0], tokenCounts: [1, 20, 130], pool: ThreadPool(threads: threads), rng: &rng)
            }
        }
        let fixture = Fixture(type: .q4_K, out: 4111, in: 256, rng: &rng)
        check(fixture, fixture.variants()[0], tokenCounts: [64], pool: ThreadPool(threads: 2), rng: &rng)
        #else
        throw XCTSkip("BLAS is not OpenBLAS here")
        #endif
    }

    /// Every output element is computed by one thread, whatever the partition: same bits for any pool.
    func testDecodeIsIdenticalForAnyThreadCount() {
        var rng = SplitMix64(seed: 7)
        for type in Self.allTypes {
            let fixture = Fixture(type: type, out: 101, in: 256, rng: &rng)
            let x = (0..<(3 * 256)).map { _ in Float.random(in: -1...1, using: &rng) }
            var results: [[Float]] = []
            for threads in [1, 2, 3] {
                var y = [Float](repeating: 0, count: 3 * 101)
                fixture.weight(fixture.variants()[0]).forward(x, tokens: 3, into: &y, pool: ThreadPool(threads: threads))
                results.append(y)
            }
            XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern), "\(type.name)")
            XCTAssertEqual(results[0].map(\.bitPattern), results[2].map(\.bitPattern), "\(type.name)")
        }
    }

    func testNonFiniteActivationsGiveNaN() {
        var rng = SplitMix64(seed: 11)
        for type in [GGMLType.q8_0, .q4_1, .q6_K] {
            let fixture = Fixture(type: type, out: 5, in: 256, rng: &rng)
            var x = (0..<256).map { _ in Float.random(in: -1...1, using: &rng) }
            x[100] = .nan
            var y = [Float](repeating: 0, count: 5)
            fixture.weight(fixture.variants()[0]).forward(x, tokens: 1, into: &y, pool: .serial)
            XCTAssertTrue(y.allSatisfy(\.isNaN), "\(type.name): \(y)")
        }
    }

    /// The checker itself: a correct result passes, and moving one expected value by a few
    /// tolerances (or a NaN output) is reported.
    func testCheckerRejectsAMutatedExpectedValue() {
        var rng = SplitMix64(seed: 3)
        let fixture = Fixture(type: .q4_1, out: 16, in: 64, rng: &rng)
        let x = (0..<64).map { _ in Float.random(in: -1...1, using: &rng) }
        var y = [Float](repeating: 0, count: 16)
        let weight = fixture.weight(fixture.variants()[0])
        weight.forward(x, tokens: 1, into: &y, pool: .serial)
        let reference = fixture.forwardReference(x, tokens: 1, roundedActivations: true)
        XCTAssertTrue(mismatches(y, reference.values, reference.tolerances).isEmpty)
        var mutated = reference.values
        mutated[5] += 3 * reference.tolerances[5] + 1e-6
        XCTAssertEqual(mismatches(y, mutated, reference.tolerances).map(\.index), [5])
        var corrupted = y
        corrupted[2] = .nan
        XCTAssertEqual(mismatches(corrupted, reference.values, reference.tolerances).map(\.index), [2])
    }

    // MARK: - bitsandbytes 4-bit weights

    /// NF4/FP4, plain and double-quantized scales, against the Float64 product of the bit-exact
    /// dequantization (`Quantized4Bit.dequantized`, checked against bitsandbytes in
    /// `Quantized4BitTests`), with the Float32 tolerance: decode, panels and `backwardInput` all
    /// compute in Float32. Rows of 37 and 96 elements make blocks of 64 cross rows (37: an odd
    /// element count, rows starting inside a byte).
    func testFourBitForwardBackwardAndRows() throws {
        var rng = SplitMix64(seed: 0x4B17)
        for (out, inFeatures, threads) in [(67, 512, [2]), (13, 37, [1, 3]), (13, 96, [1, 3]), (9, 576, [2])] {
            for (type, double) in FourBitFixture.kinds {
                let fixture = try FourBitFixture(type: type, doubleQuantization: double, out: out, in: inFeatures, rng: &rng)
                checkForwardBackwardAndRows(fixture, threads: threads, rng: &rng)
            }
        }
    }

    func testFourBitSeveralPanelsAndSingleThreadedBLAS() throws {
        var rng = SplitMix64(seed: 0x4B18)
        try checkSeveralPanelsAndSingleThreadedBLAS(rng: &rng) { out, inFeatures, rng in
            // The big one NF4 + double quantization, the small ones FP4 + double quantization.
            try FourBitFixture(type: out > 4000 ? .nf4 : .fp4, doubleQuantization: true, out: out, in: inFeatures, rng: &rng)
        }
    }

    func testFourBitDecodeIsIdenticalForAnyThreadCountAndPropagatesNaN() throws {
        var rng = SplitMix64(seed: 0x4B19)
        for (type, double) in FourBitFixture.kinds {
            checkDecodeThreadsAndNaN(try FourBitFixture(type: type, doubleQuantization: double, out: 101, in: 192, rng: &rng), rng: &rng)
        }
    }

    // MARK: - bitsandbytes LLM.int8 rows

    /// Int8 rows against the Float64 product of their exact dequantization (`Int8Fixture`, which
    /// dequantizes as bitsandbytes' `MatMul8bitFp`; `Int8RowQuantizedTests` checks that against
    /// bitsandbytes), with the Float32 tolerance: the fused decode kernel scales each row's sum
    /// instead of each weight, which stays within the same bound. Rows of 37 and 100 elements run
    /// the scalar tails, 512 and 576 the 32-lane loop, and one row is all zero.
    func testInt8ForwardBackwardAndRows() throws {
        var rng = SplitMix64(seed: 0x1B8)
        for (out, inFeatures, threads) in [(67, 512, [2]), (13, 37, [1, 3]), (13, 100, [1, 3]), (9, 576, [2]), (3, 1, [1])] {
            checkForwardBackwardAndRows(try Int8Fixture(out: out, in: inFeatures, rng: &rng), threads: threads, rng: &rng)
        }
    }

    func testInt8SeveralPanelsAndSingleThreadedBLAS() throws {
        var rng = SplitMix64(seed: 0x1B9)
        try checkSeveralPanelsAndSingleThreadedBLAS(rng: &rng) { out, inFeatures, rng in try Int8Fixture(out: out, in: inFeatures, rng: &rng) }
    }

    func testInt8DecodeIsIdenticalForAnyThreadCountAndPropagatesNaN() throws {
        var rng = SplitMix64(seed: 0x1BA)
        checkDecodeThreadsAndNaN(try Int8Fixture(out: 101, in: 192, rng: &rng), rng: &rng)
    }

    // MARK: - Checks of bitsandbytes storage

    /// `checkDequantized` with each pool size, then `row(_:)` bit for bit against the reference.
    private func checkForwardBackwardAndRows(_ fixture: some DequantizedFixture, threads: [Int], rng: inout SplitMix64) {
        for t in threads {
            checkDequantized(fixture, tokenCounts: [1, 2, 3, 5, 9, 64, 130], pool: ThreadPool(threads: t), rng: &rng)
        }
        let weight = fixture.weight()
        let (out, inFeatures) = (fixture.out, fixture.inFeatures)
        var row = [Float](repeating: .nan, count: inFeatures)
        for r in 0..<out {
            weight.row(r, into: &row)
            XCTAssertEqual(row.map(\.bitPattern), fixture.dequantized[(r * inFeatures)..<((r + 1) * inFeatures)].map(\.bitPattern),
                           "\(fixture) row \(r)")
        }
    }

    /// More than one 4 MiB panel (4111 × 256), and OpenBLAS set to one thread (panels and `sgemm`
    /// split over the pool) with odd shapes.
    private func checkSeveralPanelsAndSingleThreadedBLAS<F: DequantizedFixture>(
        rng: inout SplitMix64, _ make: (_ out: Int, _ in: Int, inout SplitMix64) throws -> F) throws {
        let big = try make(4111, 256, &rng)
        checkDequantized(big, tokenCounts: [1, 64], pool: ThreadPool(threads: 3), rng: &rng)
        #if canImport(CBLAS)
        let previous = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(previous) }
        for (out, inFeatures) in [(67, 96), (67, 37), (33, 576)] {
            let fixture = try make(out, inFeatures, &rng)
            for threads in [2, 3] {
                checkDequantized(fixture, tokenCounts: [1, 20, 130], pool: ThreadPool(threads: threads), rng: &rng)
            }
        }
        checkDequantized(big, tokenCounts: [64], pool: ThreadPool(threads: 2), rng: &rng)
        #endif
    }

    /// Decode gives the same bits for 1, 2 and 3 threads; a NaN activation makes every output NaN
    /// (decode and panels).
    private func checkDecodeThreadsAndNaN(_ fixture: some DequantizedFixture, rng: inout SplitMix64) {
        let (out, n) = (fixture.out, fixture.inFeatures)
        var x = (0..<(3 * n)).map { _ in Float.random(in: -1...1, using: &rng) }
        var results: [[UInt32]] = []
        for threads in [1, 2, 3] {
            var y = [Float](repeating: 0, count: 3 * out)
            fixture.weight().forward(x, tokens: 3, into: &y, pool: ThreadPool(threads: threads))
            results.append(y.map(\.bitPattern))
        }
        XCTAssertEqual(results[0], results[1], "\(fixture)")
        XCTAssertEqual(results[0], results[2], "\(fixture)")
        x[n / 2] = .nan
        for tokens in [1, 40] {
            let xs = Array((0..<tokens).map { _ in x[0..<n] }.joined())
            var y = [Float](repeating: 0, count: out * tokens)
            fixture.weight().forward(xs, tokens: tokens, into: &y, pool: .serial)
            XCTAssertTrue(y.allSatisfy(\.isNaN), "\(fixture) tokens \(tokens): \(y.prefix(5))")
        }
    }

    /// Forward (decode and panels, plain and accumulating) and `backwardInput` of a bitsandbytes
    /// weight against the Float64 products of its exact dequantization.
    private func checkDequantized(_ fixture: some DequantizedFixture, tokenCounts: [Int], pool: ThreadPool, rng: inout SplitMix64) {
        let weight = fixture.weight()
        let (out, inFeatures) = (fixture.out, fixture.inFeatures)
        for tokens in tokenCounts {
            let context = "\(fixture) tokens \(tokens) threads \(pool.threads) (\(tokens <= weight.decodeTokenLimit ? "decode" : "panels"))"
            var x = (0..<(tokens * inFeatures)).map { _ in Float.random(in: -1...1, using: &rng) }
            for i in stride(from: 17, to: x.count, by: 389) { x[i] *= 40 }
            let reference = fixture.forwardReference(x, tokens: tokens)
            var y = [Float](repeating: .nan, count: tokens * out)
            weight.forward(x, tokens: tokens, into: &y, pool: pool)
            assertClose(y, reference.values, reference.tolerances, context + " forward")

            let y0 = (0..<(tokens * out)).map { _ in Float.random(in: -2...2, using: &rng) }
            var y1 = y0
            weight.forward(x, tokens: tokens, into: &y1, accumulate: true, pool: pool)
            assertClose(y1, zip(y0, reference.values).map { Double($0) + $1 },
                        (0..<y0.count).map { reference.tolerances[$0] + 0x1p-23 * (abs(Double(y0[$0])) + reference.magnitudes[$0]) },
                        context + " forward accumulate")

            let dy = (0..<(tokens * out)).map { _ in Float.random(in: -1...1, using: &rng) }
            let backward = fixture.backwardReference(dy, tokens: tokens)
            var dx = [Float](repeating: .nan, count: tokens * inFeatures)
            weight.backwardInput(dy, tokens: tokens, into: &dx, pool: pool)
            assertClose(dx, backward.values, backward.tolerances, context + " backwardInput")
            let dx0 = (0..<(tokens * inFeatures)).map { _ in Float.random(in: -2...2, using: &rng) }
            var dx1 = dx0
            weight.backwardInput(dy, tokens: tokens, into: &dx1, accumulate: true, pool: pool)
            assertClose(dx1, zip(dx0, backward.values).map { Double($0) + $1 },
                        (0..<dx0.count).map { backward.tolerances[$0] + 0x1p-23 * (abs(Double(dx0[$0])) + backward.magnitudes[$0]) },
                        context + " backwardInput accumulate")
        }
    }

    // MARK: - Checks

    private func check(_ fixture: Fixture, _ variant: Variant, tokenCounts: [Int], pool: ThreadPool,
                       rng: inout SplitMix64) {
        let weight = fixture.weight(variant)
        let (out, inFeatures) = (fixture.out, fixture.inFeatures)
        for tokens in tokenCounts {
            let context = "\(fixture.type.name) \(variant) [\(out), \(inFeatures)] tokens \(tokens) threads \(pool.threads)"
            // Activations with a few outliers, as transformer activations have.
            var x = (0..<(tokens * inFeatures)).map { _ in Float.random(in: -1...1, using: &rng) }
            for i in stride(from: 17, to: x.count, by: 389) { x[i] *= 40 }
            let rounded = fixture.type.blockSize > 1 && variant.arithmetic == .quantizedActivations
                && tokens <= weight.decodeTokenLimit
            let reference = fixture.forwardReference(x, tokens: tokens, roundedActivations: rounded)

            var y = [Float](repeating: .nan, count: tokens * out)
            weight.forward(x, tokens: tokens, into: &y, pool: pool)
            assertClose(y, reference.values, reference.tolerances, context + " forward")

            if rounded {
                // Activations the 16-bit rounding represents exactly (x = k·2^e per group,
                // |k| ≤ 32767, one |k| = 32767): only Float32 rounding remains, so lane-order or
                // bit-unpacking mistakes in the integer kernels cannot hide inside the rounding bound.
                var exact = [Float](repeating: 0, count: tokens * inFeatures)
                for g in 0..<(exact.count / 32) {
                    let scale = Float(sign: .plus, exponent: Int.random(in: (-24)...(-12), using: &rng), significand: 1)
                    for j in 0..<32 { exact[32 * g + j] = Float(Int.random(in: -32767...32767, using: &rng)) * scale }
                    exact[32 * g + Int.random(in: 0..<32, using: &rng)] = (Bool.random(using: &rng) ? 32767 : -32767) * scale
                }
                let exactReference = fixture.forwardReference(exact, tokens: tokens, roundedActivations: true, exactActivations: true)
                weight.forward(exact, tokens: tokens, into: &y, pool: pool)
                assertClose(y, exactReference.values, exactReference.tolerances, context + " forward, exactly rounded activations")
            }

            // accumulate: y = y0 + x·Wᵀ, one more rounding of |y0| + |x·Wᵀ|.
            let y0 = (0..<(tokens * out)).map { _ in Float.random(in: -2...2, using: &rng) }
            var y1 = y0
            weight.forward(x, tokens: tokens, into: &y1, accumulate: true, pool: pool)
            let expected = zip(y0, reference.values).map { Double($0) + $1 }
            let tolerances = (0..<y0.count).map { reference.tolerances[$0] + 0x1p-23 * (abs(Double(y0[$0])) + reference.magnitudes[$0]) }
            assertClose(y1, expected, tolerances, context + " forward accumulate")

            let dy = (0..<(tokens * out)).map { _ in Float.random(in: -1...1, using: &rng) }
            let backward = fixture.backwardReference(dy, tokens: tokens)
            var dx = [Float](repeating: .nan, count: tokens * inFeatures)
            weight.backwardInput(dy, tokens: tokens, into: &dx, pool: pool)
            assertClose(dx, backward.values, backward.tolerances, context + " backwardInput")
            let dx0 = (0..<(tokens * inFeatures)).map { _ in Float.random(in: -2...2, using: &rng) }
            var dx1 = dx0
            weight.backwardInput(dy, tokens: tokens, into: &dx1, accumulate: true, pool: pool)
            assertClose(dx1, zip(dx0, backward.values).map { Double($0) + $1 },
                        (0..<dx0.count).map { backward.tolerances[$0] + 0x1p-23 * (abs(Double(dx0[$0])) + backward.magnitudes[$0]) },
                        context + " backwardInput accumulate")
        }
    }

    /// `row(r)` is bit-identical to the reference dequantization, for every storage variant.
    private func checkRows(_ fixture: Fixture) {
        for variant in fixture.variants() {
            let weight = fixture.weight(variant)
            var row = [Float](repeating: .nan, count: fixture.inFeatures)
            for r in 0..<fixture.out {
                weight.row(r, into: &row)
                let expected = fixture.dequantized[(r * fixture.inFeatures)..<((r + 1) * fixture.inFeatures)]
                if row.map(\.bitPattern) != expected.map(\.bitPattern) {
                    XCTFail("\(fixture.type.name) \(variant) row \(r) differs from GGMLType.dequantize")
                    return
                }
            }
        }
    }

    private func assertClose(_ got: [Float], _ expected: [Double], _ tolerances: [Double], _ context: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        let bad = mismatches(got, expected, tolerances)
        if ProcessInfo.processInfo.environment["FINCH_TOLERANCE_REPORT"] == "1" {
            let worst = got.indices.map { abs(Double(got[$0]) - expected[$0]) / max(tolerances[$0], .leastNonzeroMagnitude) }.max() ?? 0
            print(String(format: "%@: worst error / tolerance = %.3g", context, worst))
        }
        guard !bad.isEmpty else { return }
        let worst = bad.sorted { $0.excess > $1.excess }.prefix(4).map {
            "[\($0.index)] got \($0.got) expected \($0.expected) ± \($0.tolerance)"
        }
        XCTFail("\(context): \(bad.count) of \(got.count) outside tolerance; worst: \(worst.joined(separator: "; "))",
                file: file, line: line)
    }

    // MARK: - Benchmarks (printed with FINCH_BENCH=1, never asserted)

    /// With `FINCH_BENCH=1`, prints decode and prefill throughput (median of several runs) for the
    /// shapes of SmolLM2-135M and a whole-model decode step; otherwise runs the same harness once on
    /// small shapes and checks its results, so the code stays compiled and correct.
    func testBenchmark() {
        let bench = ProcessInfo.processInfo.environment["FINCH_BENCH"] == "1"
        let cpu = CPUWatch()
        defer { if bench { print(cpu.report()) } }
        var rng = SplitMix64(seed: 99)
        let benchThreads = Int(ProcessInfo.processInfo.environment["FINCH_BENCH_THREADS"] ?? "") ?? 2
        let pool = ThreadPool(threads: bench ? benchThreads : 1)
        let shapes = bench ? [(576, 576), (1536, 576), (576, 1536), (49152, 576)] : [(40, 64)]
        let decodeTypes: [GGMLType] = [.q4_1, .q8_0, .q4_0, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K, .f16, .bf16, .f32]
        if bench {
            #if canImport(CBLAS)
            print("OpenBLAS threads: \(openblas_get_num_threads()) (set OPENBLAS_NUM_THREADS=1 to split BLAS work over the pool)")
            #endif
            print("decode, 1 token, \(pool.threads) threads: µs, weight GB/s, GFLOP/s")
        }
        for (out, inFeatures) in shapes {
            for type in decodeTypes where inFeatures % type.blockSize == 0 {
                let weights = BenchWeights(type: type, out: out, in: inFeatures, copies: 1, rng: &rng)
                let x = (0..<inFeatures).map { _ in Float.random(in: -1...1, using: &rng) }
                var y = [Float](repeating: 0, count: out)
                let arithmetics: [LinearWeight.Arithmetic] = type.blockSize > 1 ? [.quantizedActivations, .float32] : [.float32]
                for arithmetic in arithmetics {
                    var weight = weights.weights[0]
                    weight.arithmetic = arithmetic
                    let ns = median(bench ? 30 : 1) { weight.forward(x, tokens: 1, into: &y, pool: pool) }
                    if bench {
                        print(String(format: "  %@ %@ %5d×%-5d %8.1f µs %6.2f GB/s %6.2f GFLOP/s", type.name.padding(toLength: 4, withPad: " ", startingAt: 0),
                                     arithmetic == .float32 ? "f32  " : "int16", out, inFeatures, ns / 1000,
                                     Double(weights.bytesPerCopy) / ns, 2 * Double(out * inFeatures) / ns))
                    } else {
                        XCTAssertTrue(y.allSatisfy(\.isFinite), "\(type.name) benchmark harness")
                    }
                }
            }
        }

        // The whole SmolLM2-135M decode step: 30 layers of Q4_1 q/k/v/o/gate/up/down and the Q8_0
        // tied lm_head, each layer its own memory (the model does not fit in the caches).
        let layers = bench ? 30 : 1
        let hidden = bench ? 576 : 64, kv = bench ? 192 : 32, inter = bench ? 1536 : 96, vocab = bench ? 49152 : 128
        let projections = [(hidden, hidden), (kv, hidden), (kv, hidden), (hidden, hidden), (inter, hidden), (inter, hidden), (hidden, inter)]
        let stack = projections.map { BenchWeights(type: .q4_1, out: $0.0, in: $0.1, copies: layers, rng: &rng) }
        let head = BenchWeights(type: .q8_0, out: vocab, in: hidden, copies: 1, rng: &rng)
        let x = (0..<inter).map { _ in Float.random(in: -1...1, using: &rng) }
        var y = [Float](repeating: 0, count: vocab)
        for threads in bench ? Array(Set([1, benchThreads])).sorted() : [1] {
            let modelPool = ThreadPool(threads: threads)
            let ns = median(bench ? 15 : 1) {
                for layer in 0..<layers {
                    for projection in stack { projection.weights[layer].forward(x, tokens: 1, into: &y, pool: modelPool) }
                }
                head.weights[0].forward(x, tokens: 1, into: &y, pool: modelPool)
            }
            if bench {
                let bytes = stack.reduce(0) { $0 + $1.bytesPerCopy } * layers + head.bytesPerCopy
                print(String(format: "SmolLM2-135M linear layers, 1 token, %d threads: %.2f ms/token = %.1f tokens/s, %.2f GB/s",
                             threads, ns / 1e6, 1e9 / ns, Double(bytes) / ns))
            }
        }

        // Prefill: 512 tokens through dequantized panels + sgemm (and F32 sgemm directly).
        let tokens = bench ? 512 : 20
        if bench { print("prefill, \(tokens) tokens, \(pool.threads) threads: ms, GFLOP/s") }
        for (out, inFeatures) in shapes {
            for type in [GGMLType.q4_1, .q8_0, .q4_K, .q6_K, .f16, .bf16, .f32] where inFeatures % type.blockSize == 0 {
                let weights = BenchWeights(type: type, out: out, in: inFeatures, copies: 1, rng: &rng)
                let x = (0..<(tokens * inFeatures)).map { _ in Float.random(in: -1...1, using: &rng) }
                var y = [Float](repeating: 0, count: tokens * out)
                let weight = weights.weights[0]
                let ns = median(bench ? 7 : 1) { weight.forward(x, tokens: tokens, into: &y, pool: pool) }
                var dx = [Float](repeating: 0, count: tokens * inFeatures)
                let nsBackward = median(bench ? 5 : 1) { weight.backwardInput(y, tokens: tokens, into: &dx, pool: pool) }
                if bench {
                    let flops = 2 * Double(tokens * out * inFeatures)
                    print(String(format: "  %@ %5d×%-5d forward %8.2f ms %6.1f GFLOP/s   backwardInput %8.2f ms %6.1f GFLOP/s",
                                 type.name.padding(toLength: 4, withPad: " ", startingAt: 0), out, inFeatures,
                                 ns / 1e6, flops / ns, nsBackward / 1e6, flops / nsBackward))
                } else {
                    XCTAssertTrue(y.allSatisfy(\.isFinite) && dx.allSatisfy(\.isFinite), "\(type.name) benchmark harness")
                }
            }
        }

        // Accuracy on a realistic layer: SmolLM2-like Q4_1 down projection (576 × 1536), activations
        // with outliers; errors relative to the Float64 reference of the dequantized weights.
        do {
            let (out, inFeatures) = bench ? (576, 1536) : (16, 64)
            let fixture = Fixture(type: .q4_1, out: out, in: inFeatures, rng: &rng)
            var x = (0..<inFeatures).map { _ in Float.random(in: -1...1, using: &rng) * Float.random(in: 0...1, using: &rng) }
            for i in stride(from: 5, to: inFeatures, by: 97) { x[i] *= 30 }
            let reference = fixture.forwardReference(x, tokens: 1, roundedActivations: false).values
            // ggml's arithmetic (q8_1 activations: 8 bits per 32) is Σ w·x̃ with x̃ the 8-bit-rounded x.
            var ggml = [Double](repeating: 0, count: out)
            for g in 0..<(inFeatures / 32) {
                let d = Double(x[(32 * g)..<(32 * g + 32)].map { abs($0) }.max()!) / 127
                for j in (32 * g)..<(32 * g + 32) {
                    let rounded = d == 0 ? 0 : (Double(x[j]) / d).rounded() * d
                    for r in 0..<out { ggml[r] += Double(fixture.dequantized[r * inFeatures + j]) * rounded }
                }
            }
            func errors(_ y: [Double]) -> (Double, Double) {
                let scale = reference.map { abs($0) }.max()!, rms = (reference.map { $0 * $0 }.reduce(0, +) / Double(out)).squareRoot()
                let e = zip(y, reference).map { $0 - $1 }
                return (e.map { abs($0) }.max()! / scale, (e.map { $0 * $0 }.reduce(0, +) / Double(out)).squareRoot() / rms)
            }
            var lines: [String] = []
            for arithmetic in [LinearWeight.Arithmetic.quantizedActivations, .float32] {
                var weight = fixture.weight(Variant(kind: .ggml, arithmetic: arithmetic))
                weight.arithmetic = arithmetic
                var y = [Float](repeating: 0, count: out)
                weight.forward(x, tokens: 1, into: &y, pool: pool)
                let (maximum, rms) = errors(y.map(Double.init))
                lines.append(String(format: "  %@: max |error| / max |y| = %.2e, rms error / rms y = %.2e",
                                    arithmetic == .float32 ? "float32 (dequantize + Float32 dot)   " : "int16 activations (default)         ", maximum, rms))
                XCTAssertLessThan(maximum, 1e-3, "accuracy harness")
            }
            let (maximum, rms) = errors(ggml)
            lines.append(String(format: "  ggml's int8 activations (emulated)  : max |error| / max |y| = %.2e, rms error / rms y = %.2e", maximum, rms))
            if bench { print("accuracy, Q4_1 \(out)×\(inFeatures), 1 token:\n" + lines.joined(separator: "\n")) }
        }

        // Where fused decode kernels stop beating panels + sgemm (sets `defaultDecodeTokenLimit`).
        if bench {
            print("crossover, 1536 rows: fused µs / panels µs per call")
            for type in [GGMLType.q4_1, .q8_0, .q6_K, .bf16, .f16] {
                let inFeatures = type.blockSize == 256 ? 512 : 576
                let weights = BenchWeights(type: type, out: 1536, in: inFeatures, copies: 1, rng: &rng)
                for tokens in [1, 2, 4, 6, 8, 12, 16, 32] {
                    let x = (0..<(tokens * inFeatures)).map { _ in Float.random(in: -1...1, using: &rng) }
                    var y = [Float](repeating: 0, count: tokens * 1536)
                    var fused = weights.weights[0], panels = fused
                    fused.decodeTokenLimit = .max
                    panels.decodeTokenLimit = 0
                    let a = median(15) { fused.forward(x, tokens: tokens, into: &y, pool: pool) }
                    let b = median(15) { panels.forward(x, tokens: tokens, into: &y, pool: pool) }
                    print(String(format: "  %@ 1536×%d tokens %3d: %8.1f / %8.1f", type.name, inFeatures, tokens, a / 1000, b / 1000))
                }
            }
        }
    }

    /// With `FINCH_BENCH=1`, prints bitsandbytes 4-bit (NF4/FP4) and LLM.int8 throughput next to
    /// Q4_1 and F32 on SmolLM2-135M's shapes: decode (1 token), a whole decode step of the linear layers, 512
    /// tokens forward and `backwardInput`, the decode/panel crossover and the quantization speed.
    /// Otherwise runs the harness once on small shapes.
    func testFourBitBenchmark() throws {
        let bench = ProcessInfo.processInfo.environment["FINCH_BENCH"] == "1"
        let cpu = CPUWatch()
        defer { if bench { print(cpu.report()) } }
        var rng = SplitMix64(seed: 0xB4B)
        let threads = Int(ProcessInfo.processInfo.environment["FINCH_BENCH_THREADS"] ?? "") ?? 2
        let pool = ThreadPool(threads: bench ? threads : 1)
        let shapes = bench ? [(576, 576), (1536, 576), (576, 1536)] : [(40, 64)]

        /// The weights of one shape in every compared storage.
        func weights(out: Int, in n: Int, copies: Int = 1) throws -> [(String, [LinearWeight], Int)] {
            var result: [(String, [LinearWeight], Int)] = []
            let values = (0..<copies).map { _ in (0..<(out * n)).map { _ in Float.random(in: -0.1...0.1, using: &rng) } }
            for (name, type, double) in [("NF4+dq", FourBitType.nf4, true), ("NF4   ", .nf4, false), ("FP4+dq", .fp4, true)] {
                let q = try values.map { try Quantized4Bit(quantizing: $0, shape: [out, n], type: type, doubleQuantization: double, pool: pool) }
                result.append((name, q.map { LinearWeight(quantized: $0) }, q[0].byteCount))
            }
            let int8 = try values.map { v in
                try v.withUnsafeBufferPointer { try LinearWeight(outFeatures: out, inFeatures: n, quantizingInt8: $0, pool: pool) }
            }
            result.append(("int8 rows", int8, out * n + 4 * out))
            let q41 = BenchWeights(type: .q4_1, out: out, in: n, copies: copies, rng: &rng)
            var q41f = q41.weights
            for i in q41f.indices { q41f[i].arithmetic = .float32 }
            result.append(("Q4_1 f32", q41f, q41.bytesPerCopy))
            result.append(("Q4_1 i16", q41.weights, q41.bytesPerCopy))
            result.append(("F32   ", values.map { LinearWeight(outFeatures: out, inFeatures: n, float32: $0) }, 4 * out * n))
            return result
        }

        if bench { print("4-bit decode, 1 token, \(pool.threads) threads: µs, weight GB/s") }
        for (out, n) in shapes {
            let x = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
            var y = [Float](repeating: 0, count: out)
            for (name, w, bytes) in try weights(out: out, in: n) {
                let ns = median(bench ? 30 : 1) { w[0].forward(x, tokens: 1, into: &y, pool: pool) }
                if bench {
                    print(String(format: "  %@ %5d×%-5d %8.1f µs %6.2f GB/s", name.padding(toLength: 8, withPad: " ", startingAt: 0),
                                 out, n, ns / 1000, Double(bytes) / ns))
                } else {
                    XCTAssertTrue(y.allSatisfy(\.isFinite), "\(name) benchmark harness")
                }
            }
        }

        // A SmolLM2-135M decode step of the linear layers (30 × q/k/v/o/gate/up/down, no lm_head:
        // bitsandbytes leaves it unquantized), each layer its own memory.
        let layers = bench ? 30 : 1
        let hidden = bench ? 576 : 64, kv = bench ? 192 : 32, inter = bench ? 1536 : 96
        let projections = [(hidden, hidden), (kv, hidden), (kv, hidden), (hidden, hidden), (inter, hidden), (inter, hidden), (hidden, inter)]
        let stacks = try projections.map { try weights(out: $0.0, in: $0.1, copies: layers) }
        let x = (0..<inter).map { _ in Float.random(in: -1...1, using: &rng) }
        var y = [Float](repeating: 0, count: inter)
        for k in stacks[0].indices {
            let ns = median(bench ? 11 : 1) {
                for layer in 0..<layers {
                    for stack in stacks { stack[k].1[layer].forward(x, tokens: 1, into: &y, pool: pool) }
                }
            }
            if bench {
                let bytes = stacks.reduce(0) { $0 + $1[k].2 } * layers
                print(String(format: "SmolLM2-135M linear layers (no lm_head), 1 token, %@: %.2f ms/token, %.1f MB of weights",
                             stacks[0][k].0, ns / 1e6, Double(bytes) / 1e6))
            }
        }

        let tokens = bench ? 512 : 20
        if bench { print("\(tokens) tokens, \(pool.threads) threads: ms, GFLOP/s") }
        for (out, n) in shapes {
            let x = (0..<(tokens * n)).map { _ in Float.random(in: -1...1, using: &rng) }
            var y = [Float](repeating: 0, count: tokens * out)
            var dx = [Float](repeating: 0, count: tokens * n)
            for (name, w, _) in try weights(out: out, in: n) where !name.hasPrefix("Q4_1 i") {
                let forward = median(bench ? 7 : 1) { w[0].forward(x, tokens: tokens, into: &y, pool: pool) }
                let backward = median(bench ? 7 : 1) { w[0].backwardInput(y, tokens: tokens, into: &dx, pool: pool) }
                let flops = 2 * Double(tokens * out * n)
                if bench {
                    print(String(format: "  %@ %5d×%-5d forward %7.2f ms %6.1f GFLOP/s   backwardInput %7.2f ms %6.1f GFLOP/s",
                                 name.padding(toLength: 8, withPad: " ", startingAt: 0), out, n, forward / 1e6, flops / forward,
                                 backward / 1e6, flops / backward))
                } else {
                    XCTAssertTrue(y.allSatisfy(\.isFinite) && dx.allSatisfy(\.isFinite), "\(name) benchmark harness")
                }
            }
        }

        if bench {
            for (name, weight, _) in try weights(out: 1536, in: 576) where name == "NF4+dq" || name == "int8 rows" {
                print("crossover, \(name) 1536×576: decode µs / panels µs per call")
                let w = weight[0]
                for tokens in [1, 2, 4, 6, 8, 12, 16, 32] {
                    let x = (0..<(tokens * 576)).map { _ in Float.random(in: -1...1, using: &rng) }
                    var y = [Float](repeating: 0, count: tokens * 1536)
                    var fused = w, panels = w
                    fused.decodeTokenLimit = .max
                    panels.decodeTokenLimit = 0
                    let a = median(15) { fused.forward(x, tokens: tokens, into: &y, pool: pool) }
                    let b = median(15) { panels.forward(x, tokens: tokens, into: &y, pool: pool) }
                    print(String(format: "  tokens %3d: %8.1f / %8.1f", tokens, a / 1000, b / 1000))
                }
            }
            let values = (0..<(1536 * 576)).map { _ in Float.random(in: -0.1...0.1, using: &rng) }
            for (type, double) in [(FourBitType.nf4, true), (.nf4, false), (.fp4, true)] {
                let ns = median(5) { _ = try? Quantized4Bit(quantizing: values, shape: [1536, 576], type: type, doubleQuantization: double, pool: pool) }
                print(String(format: "quantize 1536×576 %@%@: %.2f ms (%.2f ns per weight)", type.rawValue, double ? "+dq" : "",
                             ns / 1e6, ns / Double(values.count)))
            }
        }
    }

    private func median(_ runs: Int, _ body: () -> Void) -> Double {
        body() // warm-up: caches, scratch buffers, OpenBLAS threads
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start))
        }
        return times.sorted()[times.count / 2]
    }
}

/// CPU time other processes used while benchmarks ran (Linux `/proc/stat` minus our own
/// `getrusage`), so a figure taken on a busy machine is recognizable as such.
private struct CPUWatch {
    private let start: (machine: Double, own: Double)
    init() { start = Self.counters() }

    func report() -> String {
        let end = Self.counters()
        let own = end.own - start.own, foreign = (end.machine - start.machine) - own
        return String(format: "CPU used by other processes during the benchmark: %.1f s (ours: %.1f s)%@",
                      max(0, foreign), own, foreign > 0.05 * own ? " — figures are disturbed, rerun on an idle machine" : "")
    }

    /// (busy seconds of the whole machine, CPU seconds of this process).
    private static func counters() -> (machine: Double, own: Double) {
        var usage = rusage()
        #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let stat = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? ""
        let ticks = stat.split(separator: "\n").first?.split(separator: " ").dropFirst().compactMap { Double($0) } ?? []
        // user nice system idle iowait irq softirq steal …: everything but idle and iowait is busy.
        let busy = ticks.enumerated().filter { $0.offset != 3 && $0.offset != 4 }.reduce(0) { $0 + $1.element } / 100
        #else
        getrusage(RUSAGE_SELF, &usage)
        let busy = 0.0
        #endif
        let own = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return (busy, own)
    }
}

// MARK: - Checker

private struct Mismatch {
    var index: Int
    var got: Float
    var expected: Double
    var tolerance: Double
    var excess: Double { got.isNaN ? .infinity : abs(Double(got) - expected) / max(tolerance, .leastNonzeroMagnitude) }
}

/// Elements with `|got − expected| > tolerance`; NaN outputs always count.
private func mismatches(_ got: [Float], _ expected: [Double], _ tolerances: [Double]) -> [Mismatch] {
    precondition(got.count == expected.count && got.count == tolerances.count)
    var bad: [Mismatch] = []
    for i in got.indices where !(abs(Double(got[i]) - expected[i]) <= tolerances[i]) {
        bad.append(Mismatch(index: i, got: got[i], expected: expected[i], tolerance: tolerances[i]))
    }
    return bad
}

// MARK: - Fixtures

/// How a fixture is handed to `LinearWeight`.
private struct Variant: CustomStringConvertible {
    enum Kind { case ggml, typed, unaligned }
    var kind: Kind
    var arithmetic: LinearWeight.Arithmetic
    var description: String { "\(kind)/\(arithmetic == .float32 ? "float32" : "int16")" }
}

/// Owns raw weight bytes (optionally at an odd address, as data in a mapped file may be).
private final class ByteBox {
    let storage: UnsafeMutableRawPointer
    let pointer: UnsafeMutableRawPointer
    init(_ bytes: [UInt8], offset: Int = 0) {
        storage = .allocate(byteCount: bytes.count + 64, alignment: 64)
        pointer = storage + offset
        bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }
    deinit { storage.deallocate() }
}

private struct Fixture {
    let type: GGMLType
    let out: Int
    let inFeatures: Int
    let bytes: [UInt8]
    /// The reference: `GGMLType.dequantize` of the whole matrix.
    let dequantized: [Float]
    /// `o_g` for each row and 32-element group: the part of each weight not scaled by its code.
    let offsets: [Float]
    private let boxes: [ByteBox]

    init(type: GGMLType, out: Int, in inFeatures: Int, rng: inout SplitMix64) {
        self.type = type
        self.out = out
        self.inFeatures = inFeatures
        var values = [Float](repeating: 0, count: out * inFeatures)
        for r in 0..<out {
            // Rows of different magnitudes, and a few rows with an offset, as real layers have.
            let scale = Float.random(in: 0.02...0.3, using: &rng)
            let shift: Float = r % 5 == 0 ? 0.1 : 0
            for j in 0..<inFeatures { values[r * inFeatures + j] = Float.random(in: -scale...scale, using: &rng) + shift }
        }
        var bytes = Reference.encode(values, type: type, rng: &rng)
        Reference.addEdgeCases(&bytes, type: type, rng: &rng)
        self.bytes = bytes
        var dequantized = [Float](repeating: 0, count: out * inFeatures)
        bytes.withUnsafeBytes { type.dequantize($0.baseAddress!, count: out * inFeatures, into: &dequantized) }
        self.dequantized = dequantized
        offsets = Reference.groupOffsets(bytes, type: type, out: out, in: inFeatures)
        boxes = [ByteBox(bytes), ByteBox(bytes, offset: 1)]
    }

    func variants() -> [Variant] {
        switch type {
        case .f32: [Variant(kind: .typed, arithmetic: .float32), Variant(kind: .ggml, arithmetic: .float32),
                    Variant(kind: .unaligned, arithmetic: .float32)]
        case .f16, .bf16: [Variant(kind: .typed, arithmetic: .float32), Variant(kind: .ggml, arithmetic: .float32)]
        default: [Variant(kind: .ggml, arithmetic: .quantizedActivations), Variant(kind: .ggml, arithmetic: .float32)]
        }
    }

    func weight(_ variant: Variant) -> LinearWeight {
        let box = variant.kind == .unaligned ? boxes[1] : boxes[0]
        let p = UnsafeRawPointer(box.pointer)
        let storage: LinearWeight.Storage = switch (variant.kind, type) {
        case (.typed, .f32): .float32(p.assumingMemoryBound(to: Float.self))
        case (.typed, .f16): .float16(p)
        case (.typed, .bf16): .bfloat16(p)
        default: .ggml(type, p)
        }
        var weight = LinearWeight(outFeatures: out, inFeatures: self.inFeatures, storage: storage, owner: box)
        weight.arithmetic = variant.arithmetic
        return weight
    }

    /// `ref = x·Wᵀ` in Float64, with the tolerances described on `LinearWeightTests`.
    func forwardReference(_ x: [Float], tokens: Int, roundedActivations: Bool, exactActivations: Bool = false)
        -> (values: [Double], tolerances: [Double], magnitudes: [Double]) {
        let n = self.inFeatures, groups = n / 32
        var values = [Double](repeating: 0, count: tokens * out)
        var tolerances = values, magnitudes = values
        for t in 0..<tokens {
            let xt = Array(x[(t * n)..<((t + 1) * n)])
            let dx = roundedActivations ? (0..<groups).map { g in
                Double(xt[(32 * g)..<(32 * g + 32)].map { abs($0) }.max()!) / 32767
            } : []
            for r in 0..<out {
                var sum = 0.0, magnitude = 0.0, rounding = 0.0, scaled = 0.0
                for j in 0..<n {
                    let w = Double(dequantized[r * n + j])
                    sum += w * Double(xt[j])
                    magnitude += abs(w * Double(xt[j]))
                    if roundedActivations {
                        let o = Double(offsets[r * groups + j / 32])
                        rounding += abs(w - o) * dx[j / 32] / 2
                        scaled += (abs(w - o) + abs(o)) * (abs(Double(xt[j])) + dx[j / 32])
                    }
                }
                values[t * out + r] = sum
                magnitudes[t * out + r] = magnitude
                tolerances[t * out + r] = roundedActivations
                    ? (exactActivations ? 0 : 1.001 * rounding) + 2 * Double(groups + 16) * 0x1p-24 * scaled
                    : 2 * Double(n + 4) * 0x1p-24 * magnitude
            }
        }
        return (values, tolerances, magnitudes)
    }

    /// `ref = dy·W` in Float64 (always a Float32 path).
    func backwardReference(_ dy: [Float], tokens: Int) -> (values: [Double], tolerances: [Double], magnitudes: [Double]) {
        let n = self.inFeatures
        var values = [Double](repeating: 0, count: tokens * n)
        var magnitudes = values
        for t in 0..<tokens {
            for r in 0..<out {
                let g = Double(dy[t * out + r])
                for j in 0..<n {
                    let w = Double(dequantized[r * n + j])
                    values[t * n + j] += g * w
                    magnitudes[t * n + j] += abs(g * w)
                }
            }
        }
        return (values, magnitudes.map { 2 * Double(out + 4) * 0x1p-24 * $0 }, magnitudes)
    }
}

/// A weight whose exact Float32 dequantization is known (bitsandbytes storage): the reference for
/// `checkDequantized`.
private protocol DequantizedFixture: CustomStringConvertible {
    var out: Int { get }
    var inFeatures: Int { get }
    /// Row-major `[out, inFeatures]`, bit-identical to what the weight's kernels dequantize.
    var dequantized: [Float] { get }
    func weight() -> LinearWeight
}

extension DequantizedFixture {
    /// `ref = x·Wᵀ` in Float64 with the Float32 tolerance `2·(n + 4)·u·Σ|w·x|`.
    func forwardReference(_ x: [Float], tokens: Int) -> (values: [Double], tolerances: [Double], magnitudes: [Double]) {
        let n = inFeatures
        var values = [Double](repeating: 0, count: tokens * out)
        var magnitudes = values
        for t in 0..<tokens {
            for r in 0..<out {
                var sum = 0.0, magnitude = 0.0
                for j in 0..<n {
                    let p = Double(dequantized[r * n + j]) * Double(x[t * n + j])
                    sum += p
                    magnitude += abs(p)
                }
                values[t * out + r] = sum
                magnitudes[t * out + r] = magnitude
            }
        }
        return (values, magnitudes.map { 2 * Double(n + 4) * 0x1p-24 * $0 }, magnitudes)
    }

    /// `ref = dy·W` in Float64 with the Float32 tolerance.
    func backwardReference(_ dy: [Float], tokens: Int) -> (values: [Double], tolerances: [Double], magnitudes: [Double]) {
        let n = inFeatures
        var values = [Double](repeating: 0, count: tokens * n)
        var magnitudes = values
        for t in 0..<tokens {
            for r in 0..<out {
                let g = Double(dy[t * out + r])
                for j in 0..<n {
                    let p = g * Double(dequantized[r * n + j])
                    values[t * n + j] += p
                    magnitudes[t * n + j] += abs(p)
                }
            }
        }
        return (values, magnitudes.map { 2 * Double(out + 4) * 0x1p-24 * $0 }, magnitudes)
    }
}

/// Random rows of different magnitudes, some with an offset, as real layers have.
private func randomRows(out: Int, in inFeatures: Int, rng: inout SplitMix64) -> [Float] {
    var values = [Float](repeating: 0, count: out * inFeatures)
    for r in 0..<out {
        let scale = Float.random(in: 0.02...0.3, using: &rng)
        let shift: Float = r % 5 == 0 ? 0.1 : 0
        for j in 0..<inFeatures { values[r * inFeatures + j] = Float.random(in: -scale...scale, using: &rng) + shift }
    }
    return values
}

/// A bitsandbytes 4-bit weight quantized from random rows (different magnitudes, some with an
/// offset, one all-zero block), and its Float32 dequantization as the reference.
private struct FourBitFixture: DequantizedFixture {
    static let kinds: [(FourBitType, Bool)] = [(.nf4, true), (.nf4, false), (.fp4, true), (.fp4, false)]

    let out: Int
    let inFeatures: Int
    let quantized: Quantized4Bit
    let dequantized: [Float]
    var description: String { "\(quantized.type)\(quantized.isDoubleQuantized ? "+dq" : "") [\(out), \(inFeatures)]" }

    init(type: FourBitType, doubleQuantization: Bool, out: Int, in inFeatures: Int, rng: inout SplitMix64) throws {
        self.out = out
        self.inFeatures = inFeatures
        var values = randomRows(out: out, in: inFeatures, rng: &rng)
        for i in 0..<min(64, values.count) { values[i] = 0 }
        let q = try Quantized4Bit(quantizing: values, shape: [out, inFeatures], type: type, doubleQuantization: doubleQuantization)
        quantized = q
        // Scalar, from the stored bytes (independent of the library's dequantization kernels).
        dequantized = (0..<q.count).map { i in
            let byte = q.packed[i / 2]
            let code = Int(i % 2 == 0 ? byte >> 4 : byte & 0x0F)
            let b = i / 64
            let scale: Float = switch q.absmax {
            case .float32(let a): a[b]
            case .doubleQuantized(let codes, let nested, let offset, let map): map[Int(codes[b])] * nested[b / 256] + offset
            }
            return q.codeValues[code] * scale
        }
        precondition(dequantized.map(\.bitPattern) == q.dequantized().map(\.bitPattern), "Quantized4Bit.dequantize disagrees")
    }

    func weight() -> LinearWeight { LinearWeight(quantized: quantized) }
}

/// An LLM.int8 weight quantized from random rows (one all-zero row), and its dequantization
/// computed here from the codes and row absmax as the reference.
private struct Int8Fixture: DequantizedFixture {
    let out: Int
    let inFeatures: Int
    let quantized: Int8RowQuantized
    let dequantized: [Float]
    var description: String { "int8 rows [\(out), \(inFeatures)]" }

    init(out: Int, in inFeatures: Int, rng: inout SplitMix64) throws {
        self.out = out
        self.inFeatures = inFeatures
        var values = randomRows(out: out, in: inFeatures, rng: &rng)
        for j in 0..<inFeatures { values[(out / 2) * inFeatures + j] = 0 }
        let q = try Int8RowQuantized(quantizing: values, rows: out, columns: inFeatures)
        quantized = q
        dequantized = (0..<(out * inFeatures)).map { i in Float(q.codes[i]) * (q.absmax[i / inFeatures] * Float(1.0 / 127.0 as Double)) }
        precondition(dequantized.map(\.bitPattern) == q.dequantized().map(\.bitPattern), "Int8RowQuantized.dequantize disagrees")
    }

    func weight() -> LinearWeight { LinearWeight(int8Rows: quantized) }
}

/// Encoders following reference/formats.md §4.6 ("Reference quantizers") for Q8_0/Q4_0/Q4_1,
/// random valid blocks (finite f16 scales) for the others.
private enum Reference {
    static func encode(_ values: [Float], type: GGMLType, rng: inout SplitMix64) -> [UInt8] {
        var bytes: [UInt8] = []
        switch type {
        case .f32:
            for v in values { appendLE(&bytes, v.bitPattern) }
        case .f16:
            for (i, v) in values.enumerated() {
                // Some subnormal halves and a negative zero, to exercise the exact conversion.
                var h = HalfPrecision.half(from: v)
                if i % 97 == 3 { h = UInt16.random(in: 1...0x03FF, using: &rng) | (i % 2 == 0 ? 0x8000 : 0) }
                if i == 10 { h = 0x8000 }
                appendLE(&bytes, h)
            }
        case .bf16:
            for v in values { appendLE(&bytes, HalfPrecision.bfloat16(from: v)) }
        case .q8_0:
            for b in stride(from: 0, to: values.count, by: 32) {
                let x = values[b..<(b + 32)]
                let amax = x.map { abs($0) }.max()!
                let d = amax / 127
                let id: Float = d != 0 ? 1 / d : 0
                appendLE(&bytes, HalfPrecision.half(from: d))
                for v in x { bytes.append(UInt8(bitPattern: Int8((v * id).rounded()))) }
            }
        case .q4_0:
            for b in stride(from: 0, to: values.count, by: 32) {
                let x = Array(values[b..<(b + 32)])
                let max = x.max { abs($0) < abs($1) }!
                let d = max / -8
                let id: Float = d != 0 ? 1 / d : 0
                appendLE(&bytes, HalfPrecision.half(from: d))
                let q = x.map { UInt8(min(15, Int8(($0 * id + 8.5).rounded(.towardZero)))) }
                for j in 0..<16 { bytes.append(q[j] | (q[j + 16] << 4)) }
            }
        case .q4_1:
            for b in stride(from: 0, to: values.count, by: 32) {
                let x = Array(values[b..<(b + 32)])
                let lo = x.min()!, hi = x.max()!
                let d = (hi - lo) / 15
                let id: Float = d != 0 ? 1 / d : 0
                appendLE(&bytes, HalfPrecision.half(from: d))
                appendLE(&bytes, HalfPrecision.half(from: lo))
                let q = x.map { UInt8(min(15, Int8((($0 - lo) * id + 0.5).rounded(.towardZero)))) }
                for j in 0..<16 { bytes.append(q[j] | (q[j + 16] << 4)) }
            }
        default:
            let blocks = values.count / type.blockSize
            for _ in 0..<blocks {
                var block = (0..<type.typeSize).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let d = HalfPrecision.half(from: Float.random(in: 0.001...0.01, using: &rng))
                let m = HalfPrecision.half(from: Float.random(in: 0.001...0.02, using: &rng) * (type == .q5_1 ? -1 : 1))
                switch type {
                case .q5_0: setLE(&block, 0, d)
                case .q5_1, .q4_K, .q5_K: setLE(&block, 0, d); setLE(&block, 2, m)
                case .q6_K: setLE(&block, 208, d)
                default: preconditionFailure()
                }
                bytes += block
            }
        }
        return bytes
    }

    /// A block with a zero scale and one with a subnormal scale (quantized types).
    static func addEdgeCases(_ bytes: inout [UInt8], type: GGMLType, rng: inout SplitMix64) {
        guard type.blockSize > 1 else { return }
        let blocks = bytes.count / type.typeSize
        let scaleOffset = type == .q6_K ? 208 : 0
        setLE(&bytes, 1 * type.typeSize + scaleOffset, UInt16(0))
        if blocks > 2 { setLE(&bytes, 2 * type.typeSize + scaleOffset, UInt16(0x0123)) }
    }

    /// The offset `o_g` of each row's 32-element groups (see `LinearWeightTests`).
    static func groupOffsets(_ bytes: [UInt8], type: GGMLType, out: Int, in n: Int) -> [Float] {
        let groups = n / 32
        guard type.blockSize > 1 else { return [Float](repeating: 0, count: out * max(groups, 0)) }
        var offsets = [Float](repeating: 0, count: out * groups)
        let rowBytes = n / type.blockSize * type.typeSize
        for r in 0..<out {
            for g in 0..<groups {
                switch type {
                case .q4_1, .q5_1:
                    let block = r * rowBytes + g * type.typeSize
                    offsets[r * groups + g] = HalfPrecision.float(fromHalf: UInt16(bytes[block + 2]) | UInt16(bytes[block + 3]) << 8)
                case .q4_K, .q5_K:
                    let block = r * rowBytes + (g / 8) * type.typeSize
                    let dmin = HalfPrecision.float(fromHalf: UInt16(bytes[block + 2]) | UInt16(bytes[block + 3]) << 8)
                    let s = Array(bytes[(block + 4)..<(block + 16)])
                    let j = g % 8
                    let m = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
                    offsets[r * groups + g] = -(dmin * Float(m))
                default:
                    break
                }
            }
        }
        return offsets
    }

    static func appendLE<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    static func setLE(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt16) {
        bytes[offset] = UInt8(value & 0xFF)
        bytes[offset + 1] = UInt8(value >> 8)
    }
}

/// Random valid weights for benchmarks (random codes, finite scales), in `copies` separate buffers.
private struct BenchWeights {
    let weights: [LinearWeight]
    let bytesPerCopy: Int

    init(type: GGMLType, out: Int, in n: Int, copies: Int, rng: inout SplitMix64) {
        let rowBytes = n / type.blockSize * type.typeSize
        bytesPerCopy = out * rowBytes
        var weights: [LinearWeight] = []
        for _ in 0..<copies {
            var bytes = [UInt8](repeating: 0, count: bytesPerCopy)
            bytes.withUnsafeMutableBytes { raw in
                let words = raw.bindMemory(to: UInt64.self)
                for i in words.indices { words[i] = rng.next() }
                for i in (words.count * 8)..<raw.count { raw[i] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            switch type {
            case .f32:
                for i in stride(from: 0, to: bytes.count, by: 4) { bytes[i + 3] = (bytes[i + 3] & 0x80) | 0x3E } // |w| < 0.5
            case .f16:
                for i in stride(from: 0, to: bytes.count, by: 2) { bytes[i + 1] = (bytes[i + 1] & 0x83) | 0x34 }
            case .bf16:
                for i in stride(from: 0, to: bytes.count, by: 2) { bytes[i + 1] = (bytes[i + 1] & 0x80) | 0x3E }
            default:
                let scaleOffsets: [Int] = switch type {
                case .q6_K: [208]
                case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
                default: [0]
                }
                for b in stride(from: 0, to: bytes.count, by: type.typeSize) {
                    for offset in scaleOffsets { Reference.setLE(&bytes, b + offset, 0x2000 | UInt16(bytes[b + offset] & 0xFF)) }
                }
            }
            let box = ByteBox(bytes)
            weights.append(LinearWeight(outFeatures: out, inFeatures: n, storage: .ggml(type, box.pointer), owner: box))
        }
        self.weights = weights
    }
}

