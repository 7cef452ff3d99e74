import FinchCore
import FinchFormats

/// Forward and backward passes of a `CausalLM` over packed micro-batches, for training: the
/// forward returns the log-probability of each token's target and keeps what the backward needs;
/// the backward takes `∂L/∂log p` per token and accumulates the gradients of the trainable
/// parameters — the active LoRA adapter's A and B, or every parameter of a `trainableCopy()` —
/// while the frozen base passes gradients through to earlier layers and stores none.
///
/// One API serves both losses of DESIGN.md §1:
/// - **SFT**: `CausalLMLoss.meanCrossEntropy` turns the log-probabilities into transformers'
///   causal-LM loss and its gradient (`−1/N` on the N scored tokens).
/// - **DPO**: sum the log-probabilities of each sequence's completion tokens (prompt tokens carry
///   target −100, so their log p is 0), compute the loss from policy and reference sums, and pass
///   `∂L/∂S` of each sequence to its tokens. The reference pass is `logProbabilities(…)` with
///   `adapter: nil` (or a second, frozen adapter): it keeps nothing, so it may run between the
///   policy's `forward` and `backward`.
///
/// **Memory.** Logits are never held for the whole batch: the lm_head and log-softmax run on
/// chunks of rows (`Options.logitChunkTokens`), only for rows whose target is not masked, and
/// the backward recomputes a chunk's logits (unless one chunk held them all). Saved per block:
/// q, k, v, the attention output and its log-sum-exp, the MLP pre-activations (and Llama's
/// post-attention residual), and LoRA's `x·Aᵀ`; norm outputs and activations are recomputed. With
/// `gradientCheckpointing`, only each block's input is kept and the backward re-runs the block
/// first, which gives bit-identical gradients (the same code on the same inputs).
///
/// Buffers grow to the largest micro-batch seen and are reused, so steady-state steps allocate
/// nothing per token. A pass object is used by one thread at a time (its pool runs the kernels).
public final class TrainingPass: @unchecked Sendable {
    /// Settings of one forward pass.
    public struct Options: Sendable {
        /// Keep only block inputs and recompute each block in the backward (DESIGN.md §3).
        public var gradientCheckpointing: Bool
        /// LoRA dropout of the active adapter (its `lora_dropout` is the probability).
        public var loraDropout: LoRADropout
        /// Rows of logits computed at once (each `vocabularySize` floats); nil: as many as fit
        /// 128 MiB (682 rows of SmolLM2's 49152), at least 16. When every scored row fits one
        /// chunk, the backward reuses the forward's logits instead of recomputing them (one
        /// lm_head product less, ≈ 7% of a SmolLM2 step).
        public var logitChunkTokens: Int?
        /// Also return each scored row's mean logit (TRL logs `logits/chosen` from them).
        public var logitMeans: Bool
        /// Also return, for each scored row, whether its target is the argmax of the logits
        /// (TRL's `mean_token_accuracy`; ties go to the lowest index, as `torch.argmax`).
        public var topPredictions = false

        public init(gradientCheckpointing: Bool = false, loraDropout: LoRADropout = .off, logitChunkTokens: Int? = nil,
                    logitMeans: Bool = false) {
            self.gradientCheckpointing = gradientCheckpointing
            self.loraDropout = loraDropout
            self.logitChunkTokens = logitChunkTokens
            self.logitMeans = logitMeans
        }
    }

    /// Per-token results of a forward pass (T values each, in packed order; 0 on masked rows).
    public struct Output: Sendable {
        /// `log softmax(logits_t)[target_t]`.
        public var logProbabilities: [Float]
        /// `logsumexp(logits_t)`.
        public var logSumExp: [Float]
        /// Mean of row t's logits over the vocabulary, if requested.
        public var logitMeans: [Float]?
        /// Whether row t's target is its argmax (false on masked rows), if requested.
        public var targetIsTopPrediction: [Bool]?
    }

    public let model: CausalLM
    private var buffers = Workspace()
    private let integers = IntegerBuffer()
    private var saved: Saved?
    /// Whether buffer "logits" still holds the saved pass's only chunk of logits.
    private var logitsHeld = false
    private var backwardDone = false

    /// What a saving forward leaves for `backward`.
    private struct Saved {
        let batch: PackedBatch
        let adapter: LoRAAdapter?
        let dropout: DropoutPlan?
        let checkpointing: Bool
        let chunk: Int
        /// Indices of rows with a target, their targets and log-sum-exps.
        let scored: [Int]
        let scoredTargets: [Int]
        let scoredLogSumExp: [Float]
    }

    public init(model: CausalLM) {
        self.model = model
    }

    /// The training forward: per-token log-probabilities of `batch.targets`, with activations kept
    /// for `backward` (replacing those of the previous `forward`).
    /// - Parameter adapter: the active LoRA adapter (made for this model), or nil for the base.
    public func forward(_ batch: PackedBatch, adapter: LoRAAdapter?, options: Options = Options(),
                        pool: ThreadPool = ThreadPool()) throws -> Output {
        saved = nil
        return try run(batch, adapter: adapter, options: options, saving: true, pool: pool)
    }

    /// A forward that keeps nothing for a backward (reference model, evaluation); it leaves the
    /// state of the last `forward` intact. Dropout is off unless `options` says otherwise.
    public func logProbabilities(_ batch: PackedBatch, adapter: LoRAAdapter?, options: Options = Options(),
                                 pool: ThreadPool = ThreadPool()) throws -> Output {
        try run(batch, adapter: adapter, options: options, saving: false, pool: pool)
    }

    /// Backward of the last `forward` for a loss L whose gradient with respect to each token's log
    /// p is `logProbabilityGradient` (T values; entries of masked rows are ignored). Gradients are
    /// added to the active adapter's `parameters.gradients` and, for a trainable model, to
    /// `model.trainableParameters.gradients`; zero them between optimizer steps.
    public func backward(logProbabilityGradient g: [Float], pool: ThreadPool = ThreadPool()) throws {
        guard let s = saved else { throw ModelError(model.path, "backward without a training forward (call forward first)") }
        let batch = s.batch, T = batch.tokenCount
        guard g.count == T else { throw ModelError(model.path, "\(g.count) log-probability gradients for \(T) tokens") }
        let c = model.configuration, H = c.hiddenSize, V = c.vocabSize, L = model.blocks.count
        let layout = Layout(model: model, tokens: T, rank: s.adapter?.configuration.r ?? 0, saving: true, checkpointing: s.checkpointing)
        let arena = buffers.buffer("saved", layout.total)
        let ctx = context(batch, adapter: s.adapter, dropout: s.dropout, pool: pool)
        let dStream = buffers.buffer("dStream", T * H)

        // Head: ∂L/∂(final normed rows), chunk by chunk over the scored rows.
        let normed = arena + layout.normed
        let dNormed = buffers.buffer("dNormed", T * H)
        dNormed.update(repeating: 0, count: T * H)
        let gathered = buffers.buffer("gathered", s.chunk * H), dGathered = buffers.buffer("dGathered", s.chunk * H)
        let logits = buffers.buffer("logits", s.chunk * V)
        let lmHeadGradient = model.trainableParameters?.gradient(of: model.lmHead)
        let lmBiasGradient = model.lmHeadBias.flatMap { model.trainableParameters?.gradient(of: $0) }
        let scoredGradient = s.scored.map { g[$0] }
        let held = logitsHeld // the forward's only chunk is still in "logits"
        logitsHeld = false // overwritten by its gradient below
        s.scoredTargets.withUnsafeBufferPointer { targets in
            s.scoredLogSumExp.withUnsafeBufferPointer { lse in
                scoredGradient.withUnsafeBufferPointer { gs in
                    var start = 0
                    while start < s.scored.count {
                        let n = min(s.chunk, s.scored.count - start)
                        for i in 0..<n { (gathered + i * H).update(from: normed + s.scored[start + i] * H, count: H) }
                        if !held { headLogits(gathered, rows: n, into: logits, pool: pool) }
                        CrossEntropy.backward(logits: logits, targets: targets.baseAddress! + start, logSumExp: lse.baseAddress! + start,
                                              logProbabilityGradient: gs.baseAddress! + start, tokens: n, vocabularySize: V,
                                              into: logits, pool: pool)
                        model.lmHead.backwardInput(logits, tokens: n, into: dGathered, pool: pool)
                        for i in 0..<n { (dNormed + s.scored[start + i] * H).update(from: dGathered + i * H, count: H) }
                        if let lmHeadGradient {
                            LinearWeight.accumulateWeightGradient(outputGradient: logits, input: gathered, tokens: n, outFeatures: V,
                                                                  inFeatures: H, into: lmHeadGradient, pool: pool)
                        }
                        if let lmBiasGradient {
                            LinearWeight.accumulateBiasGradient(outputGradient: logits, tokens: n, outFeatures: V, into: lmBiasGradient, pool: pool)
                        }
                        start += n
                    }
                }
            }
        }
        backwardDone = true
        model.finalNorm.backward(dNormed, x: arena + layout.stream(L), tokens: T, channels: H, into: dStream, accumulate: false,
                                 gradients: model.trainableParameters, pool: pool)

        // Blocks, last to first; with checkpointing each block is first run again from its input.
        let recomputed = buffers.buffer("recomputed", T * H)
        for layer in stride(from: L - 1, through: 0, by: -1) {
            let block = model.blocks[layer]
            let x = arena + layout.stream(layer)
            let acts = layout.activations(arena, layer: layer, model: model)
            if s.checkpointing { block.trainingForward(x, into: recomputed, saving: acts, layer: layer, context: ctx) }
            block.trainingBackward(dStream, input: x, saved: acts, layer: layer, context: ctx)
        }
        if let table = model.trainableParameters?.gradient(of: model.embedding) {
            batch.tokens.withUnsafeBufferPointer { ids in
                Embedding.backward(dStream, tokenIDs: ids.baseAddress!, tokens: T, vocabularySize: V, channels: H,
                                   tableGradient: table, pool: pool)
            }
        }
    }

    /// `∂L/∂(embedding output)` (T, hidden) of the last `backward`, or nil before one.
    public func embeddingOutputGradient() -> [Float]? {
        guard backwardDone, let s = saved else { return nil }
        let n = s.batch.tokenCount * model.configuration.hiddenSize
        return Array(UnsafeBufferPointer(start: buffers.buffer("dStream", n), count: n))
    }

    // MARK: - Forward

    private func run(_ batch: PackedBatch, adapter: LoRAAdapter?, options: Options, saving: Bool, pool: ThreadPool) throws -> Output {
        let c = model.configuration, T = batch.tokenCount, H = c.hiddenSize, V = c.vocabSize, L = model.blocks.count
        try model.checkTokens(batch.tokens)
        for target in batch.targets where target >= V {
            throw ModelError(model.path, "target \(target) is outside the vocabulary (0..<\(V))")
        }
        for s in 0..<batch.sequenceCount where batch.cumulativeLengths[s + 1] - batch.cumulativeLengths[s] > model.contextLength {
            throw ModelError(model.path, "sequence \(s) has \(batch.cumulativeLengths[s + 1] - batch.cumulativeLengths[s]) tokens, more than the context of \(model.contextLength)")
        }
        try adapter?.check(for: model)
        if case .masks(let masks) = options.loraDropout, let adapter {
            for (name, mask) in masks {
                guard let m = adapter.moduleNames.firstIndex(of: name) else {
                    throw ModelError(model.path, "LoRA dropout mask for '\(name)', which adapter '\(adapter.name)' does not adapt")
                }
                let inFeatures = adapter.parameters.tensor(named: adapter.moduleNames[m] + ".lora_A.weight")!.shape[1]
                guard mask.count == T * inFeatures else {
                    throw ModelError(model.path, "LoRA dropout mask for '\(name)' has \(mask.count) values, expected \(T)×\(inFeatures)")
                }
            }
        }
        let dropout = adapter.flatMap { DropoutPlan(options.loraDropout, probability: $0.configuration.loraDropout) }
        let checkpointing = saving && options.gradientCheckpointing
        let layout = Layout(model: model, tokens: T, rank: adapter?.configuration.r ?? 0, saving: saving, checkpointing: checkpointing)
        let arena = buffers.buffer(saving ? "saved" : "reference", layout.total)
        let ctx = context(batch, adapter: adapter, dropout: dropout, pool: pool)

        let x0 = arena + layout.stream(0)
        for (t, token) in batch.tokens.enumerated() { model.embedding.row(token, into: x0 + t * H) }
        for (layer, block) in model.blocks.enumerated() {
            block.trainingForward(arena + layout.stream(layer), into: arena + layout.stream(layer + 1),
                                  saving: layout.activations(arena, layer: layer, model: model), layer: layer, context: ctx)
        }
        let normed = arena + layout.normed
        model.finalNorm.apply(arena + layout.stream(L), tokens: T, channels: H, into: normed)

        // Head over the scored rows only, in chunks.
        var scored: [Int] = [], scoredTargets: [Int] = []
        scored.reserveCapacity(T)
        scoredTargets.reserveCapacity(T)
        for (t, target) in batch.targets.enumerated() where target >= 0 {
            scored.append(t)
            scoredTargets.append(target)
        }
        let chunk = max(1, min(max(scored.count, 1), options.logitChunkTokens ?? max(16, (128 << 20) / (4 * V))))
        var scoredLogP = [Float](repeating: 0, count: scored.count), scoredLSE = scoredLogP
        var means = options.logitMeans ? [Float](repeating: 0, count: T) : nil
        var top = options.topPredictions ? [Bool](repeating: false, count: T) : nil
        let gathered = buffers.buffer("gathered", chunk * H)
        let logits = buffers.buffer("logits", chunk * V)
        logitsHeld = false
        scoredTargets.withUnsafeBufferPointer { targets in
            scoredLogP.withUnsafeMutableBufferPointer { lp in
                scoredLSE.withUnsafeMutableBufferPointer { lse in
                    var start = 0
                    while start < scored.count {
                        let n = min(chunk, scored.count - start)
                        for i in 0..<n { (gathered + i * H).update(from: normed + scored[start + i] * H, count: H) }
                        headLogits(gathered, rows: n, into: logits, pool: pool)
                        CrossEntropy.logProbabilities(logits: logits, targets: targets.baseAddress! + start, tokens: n, vocabularySize: V,
                                                      into: lp.baseAddress! + start, logSumExp: lse.baseAddress! + start, pool: pool)
                        if top != nil {
                            for i in 0..<n {
                                let row = logits + i * V
                                var best = 0
                                for v in 1..<V where row[v] > row[best] { best = v }
                                top![scored[start + i]] = best == targets[start + i]
                            }
                        }
                        if means != nil {
                            for i in 0..<n {
                                var sum: Double = 0
                                let row = logits + i * V
                                for v in 0..<V { sum += Double(row[v]) }
                                means![scored[start + i]] = Float(sum / Double(V))
                            }
                        }
                        start += n
                    }
                }
            }
        }
        var logP = [Float](repeating: 0, count: T), logSumExp = logP
        for (i, t) in scored.enumerated() {
            logP[t] = scoredLogP[i]
            logSumExp[t] = scoredLSE[i]
        }
        if saving {
            saved = Saved(batch: batch, adapter: adapter, dropout: dropout, checkpointing: checkpointing, chunk: chunk, scored: scored,
                          scoredTargets: scoredTargets, scoredLogSumExp: scoredLSE)
            logitsHeld = scored.count <= chunk
            backwardDone = false
        }
        return Output(logProbabilities: logP, logSumExp: logSumExp, logitMeans: means, targetIsTopPrediction: top)
    }

    /// `logits = rows·W_headᵀ (+ b)` for gathered rows (n, hidden) → (n, vocab).
    private func headLogits(_ rows: UnsafePointer<Float>, rows n: Int, into logits: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        model.lmHead.forward(rows, tokens: n, into: logits, pool: pool)
        model.lmHeadBias?.add(to: logits, rows: n)
    }

    /// Scratch pointers for T tokens (grown on demand, then reused).
    private func context(_ batch: PackedBatch, adapter: LoRAAdapter?, dropout: DropoutPlan?, pool: ThreadPool) -> PassContext {
        let c = model.configuration, T = batch.tokenCount
        let H = c.hiddenSize, I = c.intermediateSize, qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        let widest = max(H, qWidth, I), r = adapter?.configuration.r ?? 1
        let positions = integers.buffer(count: T + batch.cumulativeLengths.count)
        positions.update(from: batch.positions, count: T)
        let cumulative = positions + T
        cumulative.update(from: batch.cumulativeLengths, count: batch.cumulativeLengths.count)
        // Once per pass instead of once per layer and direction (60 × 2 × T·rotaryDim/2 sin/cos).
        let ropeTable = buffers.buffer("ropeTable", T * max(1, model.rope.rotaryDim))
        model.rope.fillTable(positions: positions, tokens: T, into: ropeTable)
        return PassContext(
            tokens: T, config: c, rope: model.rope, positions: UnsafePointer(positions), ropeTable: UnsafePointer(ropeTable),
            cumulativeLengths: UnsafePointer(cumulative),
            sequences: batch.sequenceCount, adapter: adapter, dropout: dropout, gradients: model.trainableParameters, pool: pool,
            h: buffers.buffer("h", T * H), act: buffers.buffer("act", T * I), dropped: buffers.buffer("dropped", T * widest),
            loraE: buffers.buffer("loraE", T * 4 * r), loraInputGradient: buffers.buffer("loraInputGradient", T * widest),
            dH: buffers.buffer("dH", T * H), dAttn: buffers.buffer("dAttn", T * qWidth), dq: buffers.buffer("dq", T * qWidth),
            dk: buffers.buffer("dk", T * kvWidth), dv: buffers.buffer("dv", T * kvWidth), dAct: buffers.buffer("dAct", T * I),
            dGate: buffers.buffer("dGate", T * I), dUp: buffers.buffer("dUp", T * I))
    }
}

/// Offsets (in floats) inside a pass's arena: the residual stream before each block and after the
/// last, the blocks' activations, and the final norm's output.
private struct Layout {
    let tokens: Int
    let hidden: Int
    let streams: Int
    let blockCount: Int
    let rank: Int
    let activationsStart: Int
    let normed: Int
    let total: Int
    let separateActivations: Bool
    let saving: Bool

    init(model: CausalLM, tokens T: Int, rank: Int, saving: Bool, checkpointing: Bool) {
        let c = model.configuration, L = model.blocks.count
        tokens = T
        hidden = c.hiddenSize
        self.rank = rank
        // Saving: every block's input (needed by its backward) and the final stream. Otherwise two
        // streams, alternating.
        streams = saving ? L + 1 : 2
        separateActivations = saving && !checkpointing
        blockCount = BlockActivations.count(tokens: T, c, model.blockKind, rank: rank)
        activationsStart = streams * T * hidden
        normed = activationsStart + (separateActivations ? L : 1) * blockCount
        total = normed + T * hidden
        self.saving = saving
    }

    func stream(_ index: Int) -> Int { (saving ? index : index % 2) * tokens * hidden }

    func activations(_ arena: UnsafeMutablePointer<Float>, layer: Int, model: CausalLM) -> BlockActivations {
        BlockActivations(arena + activationsStart + (separateActivations ? layer : 0) * blockCount, tokens: tokens,
                         model.configuration, model.blockKind, rank: rank)
    }
}

/// Positions and sequence bounds of the current pass, for the kernels' pointer arguments.
private final class IntegerBuffer {
    private var pointer: UnsafeMutablePointer<Int>?
    private var capacity = 0

    func buffer(count: Int) -> UnsafeMutablePointer<Int> {
        if let pointer, capacity >= count { return pointer }
        pointer?.deallocate()
        capacity = max(count, 1)
        pointer = .allocate(capacity: capacity)
        return pointer!
    }

    deinit { pointer?.deallocate() }
}
