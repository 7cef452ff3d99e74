import FinchCore

/// The inputs that a block's linear modules read; modules reading the same input form a group
/// whose LoRA down-projections can be one product (`LoRAGroup`).
enum LoRAInput: Int, CaseIterable, Sendable {
    /// The attention norm's output: q, k, v (and Phi's fc1, whose MLP reads the same norm).
    case attentionInput
    /// The attention output: o_proj / dense.
    case attentionOutput
    /// Llama's post-attention norm output: gate, up.
    case mlpInput
    /// The MLP activation: down_proj / fc2.
    case mlpHidden

    func modules(_ kind: DecoderBlock.Kind) -> [LinearModule] {
        switch (self, kind) {
        case (.attentionInput, .llama): [.q, .k, .v]
        case (.attentionInput, .phi): [.q, .k, .v, .up]
        case (.attentionOutput, _): [.o]
        case (.mlpInput, .llama): [.gate, .up]
        case (.mlpInput, .phi): []
        case (.mlpHidden, _): [.down]
        }
    }

    /// Where the group's `x·Aᵀ` starts in a block's LoRA area, in units of `T·r` floats (the area
    /// holds 8: up to 4 modules read the attention input, 1 the attention output, 2 the MLP
    /// input, 1 the MLP hidden state).
    var slot: Int {
        switch self {
        case .attentionInput: 0
        case .attentionOutput: 4
        case .mlpInput: 5
        case .mlpHidden: 7
        }
    }

    static let slotCount = 8
}

/// The adapted modules of one block that read the same input `x: (T, in)`, with the LoRA products
/// done together: `down = x·[A₁; A₂; …]ᵀ` is one `(T, G·r)` product when the members' A matrices
/// are adjacent in the arena (the adapter lays them out so), and in the backward `dA = Eᵀ·x` and
/// `dx += E·[A₁; …]` are one product each (E the members' `s·dy·B` side by side). BLAS then packs
/// x once instead of once per module, and the thin rank-r products become G times wider.
///
/// With dropout, every member has its own mask, so each is done separately (same layout).
/// `down` keeps row stride `width = G·r` either way: member i's columns are `i·r ..< (i+1)·r`.
struct LoRAGroup: @unchecked Sendable {
    let members: [LoRAModule]
    let rank: Int
    let inFeatures: Int
    /// The stacked `[A₁; …; A_G]` (G·r, in) and its gradient, if the members' A are adjacent.
    let stackedA: UnsafeMutablePointer<Float>?
    let stackedAGradient: UnsafeMutablePointer<Float>?

    var width: Int { members.count * rank }

    init(members: [LoRAModule]) {
        self.members = members
        let r = members[0].rank, inF = members[0].inFeatures
        rank = r
        inFeatures = inF
        let adjacent = members.indices.dropFirst().allSatisfy { members[$0].a == members[$0 - 1].a + r * inF }
        stackedA = adjacent ? members[0].a : nil
        stackedAGradient = adjacent ? members[0].aGradient : nil
    }

    /// Whether the members can share one product in this pass.
    private func stacked(_ dropout: DropoutPlan?) -> Bool {
        guard stackedA != nil else { return false }
        guard let dropout else { return true }
        return !members.contains { dropout.applies(to: $0) }
    }

    /// `y_m += s·B_m(A_m drop(x))` for each member m (`output(m)` its `(T, out)` result), keeping
    /// `down: (T, width)`. `dropped: (T, in)` scratch.
    func forward(_ x: UnsafePointer<Float>, tokens T: Int, scaling s: Float, dropout: DropoutPlan?, dropped: UnsafeMutablePointer<Float>,
                 down: UnsafeMutablePointer<Float>, output: (LinearModule) -> UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let (r, inF, W) = (rank, inFeatures, width)
        if stacked(dropout), let a = stackedA {
            // down (T, W) = x · [A₁; …]ᵀ
            Self.gemmOverTokens(T, work: W * inF, pool: pool) { t0, n in
                BLAS.gemm(transposeA: false, transposeB: true, m: n, n: W, k: inF, a: x + t0 * inF, lda: inF, b: a, ldb: inF,
                          c: down + t0 * W, ldc: W)
            }
        } else {
            for (i, m) in members.enumerated() {
                var source = x
                if let dropout, dropout.applies(to: m) {
                    dropout.apply(m, x, tokens: T, into: dropped)
                    source = UnsafePointer(dropped)
                }
                Self.gemmOverTokens(T, work: r * inF, pool: pool) { t0, n in
                    BLAS.gemm(transposeA: false, transposeB: true, m: n, n: r, k: inF, a: source + t0 * inF, lda: inF, b: m.a, ldb: inF,
                              c: down + t0 * W + i * r, ldc: W)
                }
            }
        }
        for (i, m) in members.enumerated() {
            let y = output(m.module), outF = m.outFeatures
            // y += s · down_i · Bᵀ
            Self.gemmOverTokens(T, work: r * outF, pool: pool) { t0, n in
                BLAS.gemm(transposeA: false, transposeB: true, m: n, n: outF, k: r, a: down + t0 * W + i * r, lda: W, b: m.b, ldb: r,
                          c: y + t0 * outF, ldc: outF, alpha: s, beta: 1)
            }
        }
    }

    /// Gradients of `forward` given each member's `dy_m: (T, out)` (`outputGradient(m)`):
    /// `dB_m += s·dy_mᵀ·down_m`, `e_m = s·dy_m·B_m`, `dA_m += e_mᵀ·drop(x)`, and
    /// `dx += drop'(e_m·A_m)` summed over the members (`dx: (T, in)` holds the base part already).
    /// `x` is the input before dropout; scratch: `e: (T, width)`, `dropped`, `product: (T, in)`.
    func backward(_ x: UnsafePointer<Float>, tokens T: Int, scaling s: Float, dropout: DropoutPlan?, down: UnsafePointer<Float>,
                  outputGradient: (LinearModule) -> UnsafePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>,
                  e: UnsafeMutablePointer<Float>, dropped: UnsafeMutablePointer<Float>, product: UnsafeMutablePointer<Float>,
                  pool: ThreadPool) {
        let (r, inF, W) = (rank, inFeatures, width)
        for (i, m) in members.enumerated() {
            let dy = outputGradient(m.module), outF = m.outFeatures
            // dB (out, r) += s · dyᵀ · down_i, split over B's rows (each element one dot product over T).
            pool.parallelFor(outF, grain: Self.rowGrain(work: T * r)) { rows in
                BLAS.gemm(transposeA: true, transposeB: false, m: rows.count, n: r, k: T, a: dy + rows.lowerBound, lda: outF,
                          b: down + i * r, ldb: W, c: m.bGradient + rows.lowerBound * r, ldc: r, alpha: s, beta: 1)
            }
            // e_i (T, r) = s · dy · B
            Self.gemmOverTokens(T, work: r * outF, pool: pool) { t0, n in
                BLAS.gemm(transposeA: false, transposeB: false, m: n, n: r, k: outF, a: dy + t0 * outF, lda: outF, b: m.b, ldb: r,
                          c: e + t0 * W + i * r, ldc: W, alpha: s)
            }
        }
        if stacked(dropout), let a = stackedA, let dA = stackedAGradient {
            // [dA₁; …] (W, in) += Eᵀ · x;  dx += E · [A₁; …]
            LinearWeight.accumulateWeightGradient(outputGradient: e, input: x, tokens: T, outFeatures: W, inFeatures: inF,
                                                  into: dA, pool: pool)
            Self.gemmOverTokens(T, work: W * inF, pool: pool) { t0, n in
                BLAS.gemm(transposeA: false, transposeB: false, m: n, n: inF, k: W, a: e + t0 * W, lda: W, b: a, ldb: inF,
                          c: dx + t0 * inF, ldc: inF, beta: 1)
            }
            return
        }
        for (i, m) in members.enumerated() {
            let masked = dropout.map { $0.applies(to: m) } ?? false
            var source = x
            if masked, let dropout {
                dropout.apply(m, x, tokens: T, into: dropped)
                source = UnsafePointer(dropped)
            }
            // dA (r, in) += e_iᵀ · drop(x), split over A's columns.
            pool.parallelFor(inF, grain: Self.rowGrain(work: T * r)) { columns in
                BLAS.gemm(transposeA: true, transposeB: false, m: r, n: columns.count, k: T, a: e + i * r, lda: W,
                          b: source + columns.lowerBound, ldb: inF, c: m.aGradient + columns.lowerBound, ldc: inF, beta: 1)
            }
            // dx += drop'(e_i · A): through the same mask.
            let target = masked ? product : dx
            Self.gemmOverTokens(T, work: r * inF, pool: pool) { t0, n in
                BLAS.gemm(transposeA: false, transposeB: false, m: n, n: inF, k: r, a: e + t0 * W + i * r, lda: W, b: m.a, ldb: inF,
                          c: target + t0 * inF, ldc: inF, beta: masked ? 0 : 1)
            }
            if masked, let dropout {
                dropout.apply(m, product, tokens: T, into: product)
                Activations.add(dx, product, count: T * inF)
            }
        }
    }

    /// Runs `body(firstToken, count)` over chunks of the T rows: on the pool when BLAS is
    /// single-threaded and each chunk has ≈ 50 µs of work, else once (BLAS threads it). Each
    /// output row is one call's, so the partition does not change any sum.
    static func gemmOverTokens(_ T: Int, work perToken: Int, pool: ThreadPool, _ body: (Int, Int) -> Void) {
        let grain = BLAS.isSingleThreaded ? max(1, 500_000 / max(1, perToken)) : .max
        pool.parallelFor(T, grain: grain) { rows in body(rows.lowerBound, rows.count) }
    }

    /// Rows (or columns) of a gradient per pool chunk, each element a dot product of `work` terms.
    static func rowGrain(work: Int) -> Int {
        BLAS.isSingleThreaded ? max(1, 500_000 / max(1, work)) : .max
    }
}
