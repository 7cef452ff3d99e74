import FinchCore
import Foundation

/// AdamW as bitsandbytes 0.50.2 runs it on a CPU for transformers' `optim` values `adamw_8bit`,
/// `adamw_bnb_8bit`, `paged_adamw_8bit` (``stateBits`` 8) and `paged_adamw_32bit` (32): the
/// optimizer `Trainer.create_optimizer()` builds is `bnb.optim.AdamW(optim_bits=…, is_paged=…)`,
/// the same `Optimizer2State("adam")` as `AdamW8bit` / `PagedAdamW8bit` / `PagedAdamW`.
///
/// bitsandbytes 0.50.2 has no native 8-bit optimizer kernel for the CPU: its CPU backend
/// (`backends/cpu/ops.py`) runs torch code, which this reproduces. Per tensor, by its state:
///
/// **8-bit state** (`_optimizer_update_8bit_blockwise_cpu`): the two moments are stored as one
/// `UInt8` code per element and one Float32 absmax per block of ``blockSize`` (256) consecutive
/// elements (the last block may be short), `exp_avg` with the signed dynamic map
/// (`DynamicMap8Bit.standard`), `exp_avg_sq` with the unsigned one (`DynamicMap8Bit.unsigned`).
/// One step, per element, in Float32 (each line one torch op; the scalars are Python floats,
/// computed in Double and rounded to Float once):
///
///     m = map_s[code1] · absmax1[block]                 dequantize (native, one multiply)
///     v = map_u[code2] · absmax2[block]
///     m = fma(1−β1, g, m·β1)                            m.mul_(β1).add_(g, alpha=1−β1)
///     v = fma((1−β2)·g, g, v·β2)                        v.mul_(β2).addcmul_(g, g, value=1−β2)
///     d = √v / √(1−β2^k) + ε                            (v.sqrt() / correction2).add_(eps)
///     θ = θ·(1 − lr·wd)                                 only when wd > 0
///     θ = θ + ((−lr/(1−β1^k))·m) / d                    θ.addcdiv_(m, d, value=−lr/correction1)
///
/// then both moments are requantized (`DynamicMap8Bit.quantize`, bitsandbytes' native
/// `quantize_cpu`: new absmax per block, nearest code through its 65,536-entry table, so an exact
/// 0 becomes code 131 of the signed map and code 7 of the unsigned one, and an all-zero block codes
/// 0 with absmax 0). torch's kernels contract both multiply-adds in their vector bodies and scalar
/// tails alike, so the result does not depend on where a tensor's tail or torch's thread chunks fall.
///
/// **32-bit state** (`_optimizer_update_32bit_cpu`; all tensors with ``stateBits`` 32, and with 8
/// those of fewer than ``minimum8BitSize`` (4096, bitsandbytes' `min_8bit_size`) elements and the
/// weights of `nn.Embedding` modules, which the Trainer overrides to 32 bits): Float32 moments in
/// the arena's ``ParameterArena/firstMoments`` / ``ParameterArena/secondMoments``, and
///
///     m = fma(1−β1, g, m·β1);  v = fma((1−β2)·g, g, v·β2)
///     θ = θ·(1 − lr·wd)                                 only when wd > 0
///     θ = fma(m / (√v + ε·√(1−β2^k)), −lr·√(1−β2^k)/(1−β1^k), θ)
///
/// the same AdamW with ε scaled instead of √v, a different rounding than torch's (``AdamW``): after
/// a few steps the two differ by a few 1e-7 of a tensor's largest value (recorded in the fixture).
/// So `paged_adamw_32bit` is not bit-identical to `adamw_torch_fused`, even on a GPU.
///
/// Neither path has gradient clipping of its own: bitsandbytes 0.50.2's AdamW has no
/// `percentile_clipping` (removed) and leaves `max_unorm` at 0 (transformers cannot set it), and
/// `gnorm_scale` is 1. There is no amsgrad. Paging moves state between GPU and CPU memory; on the CPU
/// bitsandbytes uses ordinary buffers (and warns once), so paged and unpaged are the same math here
/// (``OptimizerName/notice``).
///
/// **Rounding.** Everything above is reproduced bit for bit except `√v`: torch's `Tensor.sqrt()`
/// calls MKL's `vsSqrt`, which is not correctly rounded — on the AMD CPU that made the fixture,
/// MKL's generic kernel (`mkl_vml_kernel_sSqrt_EXHAynn`) refines the CPU's `rsqrtps` estimate, whose
/// bits are vendor-specific, and ≈17 % of its results are one ulp from the correctly rounded root
/// this uses; on an Intel CPU MKL picks another kernel. So the parameters match to a few ulps of
/// their updates, not bit for bit. The moments do not depend on `√v`: given the same gradients, the
/// 8-bit codes, absmaxes and 32-bit moments are bit-identical (`AdamW8bitTests`).
///
/// The optimizer owns its 8-bit state (``stateBytes``); the arena's Float32 moment buffers hold
/// the 32-bit states and stay zero for 8-bit slices. Step it with the arena it was made for.
public final class BitsAndBytesAdamW {
    /// Elements per absmax block of the 8-bit states (fixed in bitsandbytes' CPU path and
    /// `Optimizer2State.init_state`).
    public static let blockSize = 256
    /// bitsandbytes' `min_8bit_size`: tensors with fewer elements keep 32-bit states.
    public static let minimum8BitSize = 4096

    /// How a slice's two moments are stored.
    public enum StateStorage: Sendable, Equatable {
        /// Float32, in the arena's moment buffers.
        case float32
        /// One code per element and one Float32 absmax per ``BitsAndBytesAdamW/blockSize`` block.
        case blockwise8Bit
    }

    /// One of AdamW's two moments.
    public enum Moment: Sendable {
        /// `exp_avg` (bitsandbytes' `state1`).
        case first
        /// `exp_avg_sq` (`state2`).
        case second
    }

    /// β1 (`adam_beta1`).
    public let beta1: Double
    /// β2 (`adam_beta2`).
    public let beta2: Double
    /// ε (`adam_epsilon`).
    public let epsilon: Double
    /// Decoupled weight decay (`weight_decay`), for slices whose ``ParameterSlice/appliesWeightDecay``.
    public let weightDecay: Double
    /// bitsandbytes' `optim_bits`: 8 or 32.
    public let stateBits: Int
    /// Optimizer steps taken so far (bitsandbytes' per-tensor `state["step"]`).
    public private(set) var stepCount = 0
    /// The storage of each slice of the arena, in slice order.
    public let storage: [StateStorage]
    /// Bytes of optimizer state: 8-bit slices 2 bytes per element plus 8 per block (owned here),
    /// 32-bit slices 8 bytes per element (in the arena's moment buffers).
    public let stateBytes: Int

    private let slices: [ParameterSlice]
    private let index: [String: Int]
    /// First element of each slice in `codes` (8-bit slices; −1 otherwise), and its first block in
    /// `absmax`.
    private let codeOffset: [Int]
    private let blockOffset: [Int]
    /// `exp_avg` codes of every 8-bit slice, then `exp_avg_sq` codes: 2 × `codeCount`.
    private let codes: UnsafeMutableBufferPointer<UInt8>
    private let codeCount: Int
    /// `absmax1` of every block, then `absmax2`: 2 × `blockCount`.
    private let absmax: UnsafeMutableBufferPointer<Float>
    private let blockCount: Int
    /// Work items: 8-bit slices in runs of up to 64 blocks, 32-bit slices by the arena's chunks.
    private let work: [(slice: Int, elements: Range<Int>)]

    /// An optimizer for `arena`'s slices.
    ///
    /// - Parameters:
    ///   - stateBits: 8 (`adamw_8bit`, `paged_adamw_8bit`) or 32 (`paged_adamw_32bit`).
    ///   - float32Parameters: slices kept at 32 bits whatever their size — transformers overrides
    ///     the weights of `nn.Embedding` modules (including a tied `lm_head`) when the state is
    ///     8-bit.
    /// - Throws: ``TrainingError`` if `stateBits` is not 8 or 32, a hyperparameter is out of
    ///   bitsandbytes' range, or a name in `float32Parameters` is not a slice of the arena.
    public init(arena: ParameterArena, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                weightDecay: Double = 0, stateBits: Int = 8, float32Parameters: Set<String> = []) throws {
        guard stateBits == 8 || stateBits == 32 else { throw TrainingError("optim_bits", "must be 8 or 32, got \(stateBits)") }
        guard (0..<1).contains(beta1) else { throw TrainingError("adam_beta1", "must be in [0, 1), got \(beta1)") }
        guard (0..<1).contains(beta2) else { throw TrainingError("adam_beta2", "must be in [0, 1), got \(beta2)") }
        guard epsilon >= 0 else { throw TrainingError("adam_epsilon", "must be ≥ 0, got \(epsilon)") }
        guard weightDecay >= 0 else { throw TrainingError("weight_decay", "must be ≥ 0, got \(weightDecay)") }
        for name in float32Parameters.sorted() where arena.slice(named: name) == nil {
            throw TrainingError(name, "is kept at 32-bit optimizer state but is not a trainable parameter")
        }
        (self.beta1, self.beta2, self.epsilon, self.weightDecay, self.stateBits) = (beta1, beta2, epsilon, weightDecay, stateBits)
        slices = arena.slices
        index = Dictionary(uniqueKeysWithValues: slices.enumerated().map { ($1.name, $0) })

        var storage: [StateStorage] = [], codeOffset: [Int] = [], blockOffset: [Int] = []
        var codeCount = 0, blockCount = 0, bytes = 0
        var work: [(slice: Int, elements: Range<Int>)] = []
        let run = 64 * Self.blockSize
        for (s, slice) in slices.enumerated() {
            let eightBit = stateBits == 8 && slice.count >= Self.minimum8BitSize && !float32Parameters.contains(slice.name)
            storage.append(eightBit ? .blockwise8Bit : .float32)
            codeOffset.append(eightBit ? codeCount : -1)
            blockOffset.append(blockCount)
            if eightBit {
                let blocks = (slice.count + Self.blockSize - 1) / Self.blockSize
                codeCount += slice.count
                blockCount += blocks
                bytes += 2 * slice.count + 8 * blocks
                for start in stride(from: 0, to: slice.count, by: run) { work.append((s, start..<min(slice.count, start + run))) }
            } else {
                bytes += 8 * slice.count
            }
        }
        work += arena.chunks.filter { storage[$0.slice] == .float32 }
        (self.storage, self.codeOffset, self.blockOffset, self.work) = (storage, codeOffset, blockOffset, work)
        (self.codeCount, self.blockCount, stateBytes) = (codeCount, blockCount, bytes)
        // bitsandbytes starts both states at zero: codes 0 with absmax 0 dequantize to 0.
        codes = .allocate(capacity: max(1, 2 * codeCount))
        codes.initialize(repeating: 0)
        absmax = .allocate(capacity: max(1, 2 * blockCount))
        absmax.initialize(repeating: 0)
    }

    /// The optimizer transformers' Trainer builds from these arguments for `arena` (see
    /// ``init(arena:beta1:beta2:epsilon:weightDecay:stateBits:float32Parameters:)``).
    public convenience init(_ arguments: TrainingArguments, arena: ParameterArena, stateBits: Int,
                            float32Parameters: Set<String> = []) throws {
        try self.init(arena: arena, beta1: arguments.adamBeta1, beta2: arguments.adamBeta2, epsilon: arguments.adamEpsilon,
                      weightDecay: arguments.weightDecay, stateBits: stateBits, float32Parameters: float32Parameters)
    }

    deinit {
        codes.deallocate()
        absmax.deallocate()
    }

    /// Takes one step on every slice of `arena` with the current gradients, at `learningRate`.
    /// Elementwise and blockwise, so the result does not depend on `pool`'s thread count.
    ///
    /// - Precondition: `arena` is the arena this optimizer was made for (the same slices).
    public func step(_ arena: ParameterArena, learningRate lr: Double, pool: ThreadPool = .serial) {
        precondition(arena.slices == slices, "BitsAndBytesAdamW must step the arena it was made for")
        stepCount += 1
        let k = Double(stepCount)
        let correction1 = 1 - pow(beta1, k)
        let correction2 = (1 - pow(beta2, k)).squareRoot()
        let c = Constants(
            beta1: Float(beta1), oneMinusBeta1: Float(1 - beta1), beta2: Float(beta2), oneMinusBeta2: Float(1 - beta2),
            decayFactor: Float(1 - lr * weightDecay),
            correction2: Float(correction2), epsilon: Float(epsilon), negativeStepSize: Float(-lr / correction1),
            scaledEpsilon: Float(epsilon * correction2), stepSize32: Float(-lr * correction2 / correction1))
        let decays = weightDecay > 0
        let (theta, grad, m, v) = (arena.values, arena.gradients, arena.firstMoments, arena.secondMoments)
        let (codes, absmax, codeCount, blockCount) = (self.codes, self.absmax, self.codeCount, self.blockCount)
        let (slices, storage, codeOffset, blockOffset) = (self.slices, self.storage, self.codeOffset, self.blockOffset)
        work.withUnsafeBufferPointer { work in
            pool.parallelFor(work.count) { range in
                for (s, elements) in work[range] {
                    let slice = slices[s]
                    let decay = decays && slice.appliesWeightDecay
                    let base = slice.offset
                    switch storage[s] {
                    case .float32:
                        for i in elements {
                            Self.update32(theta: &theta[base + i], m: &m[base + i], v: &v[base + i], g: grad[base + i],
                                          decay: decay, c)
                        }
                    case .blockwise8Bit:
                        let state = EightBitState(codes1: codes.baseAddress! + codeOffset[s], codes2: codes.baseAddress! + codeCount + codeOffset[s],
                                                  absmax1: absmax.baseAddress! + blockOffset[s],
                                                  absmax2: absmax.baseAddress! + blockCount + blockOffset[s])
                        Self.update8(theta: theta.baseAddress! + base, grad: grad.baseAddress! + base, state: state,
                                     elements: elements, decay: decay, c)
                    }
                }
            }
        }
    }

    /// The Float32 scalars of one step (Python floats rounded once, as torch does with them).
    struct Constants {
        var beta1, oneMinusBeta1, beta2, oneMinusBeta2, decayFactor: Float
        /// 8-bit path: `√(1−β2^k)`, ε, `−lr/(1−β1^k)`.
        var correction2, epsilon, negativeStepSize: Float
        /// 32-bit path: `ε·√(1−β2^k)` and `−lr·√(1−β2^k)/(1−β1^k)`.
        var scaledEpsilon, stepSize32: Float
    }

    /// Pointers to one 8-bit slice's state.
    struct EightBitState {
        var codes1, codes2: UnsafeMutablePointer<UInt8>
        var absmax1, absmax2: UnsafeMutablePointer<Float>
    }

    /// `_optimizer_update_32bit_cpu` for one element.
    @inline(__always)
    static func update32(theta: inout Float, m: inout Float, v: inout Float, g: Float, decay: Bool, _ c: Constants) {
        m = (m * c.beta1).addingProduct(c.oneMinusBeta1, g)
        v = (v * c.beta2).addingProduct(c.oneMinusBeta2 * g, g)
        if decay { theta = theta * c.decayFactor }
        let update = m / (v.squareRoot() + c.scaledEpsilon)
        theta = theta.addingProduct(update, c.stepSize32)
    }

    /// `_optimizer_update_8bit_blockwise_cpu` for `elements` (whole blocks, except a slice's last).
    static func update8(theta: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>, state: EightBitState,
                        elements: Range<Int>, decay: Bool, _ c: Constants) {
        let signed = DynamicMap8Bit.standard, unsigned = DynamicMap8Bit.unsigned
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * blockSize) { scratch in
            signed.values.withUnsafeBufferPointer { map1 in
                unsigned.values.withUnsafeBufferPointer { map2 in
                    for start in stride(from: elements.lowerBound, to: elements.upperBound, by: blockSize) {
                        let b = start / blockSize
                        let n = min(blockSize, elements.upperBound - start)
                        let (scale1, scale2) = (state.absmax1[b], state.absmax2[b])
                        for j in 0..<n {
                            let i = start + j
                            let g = grad[i]
                            let m = (map1[Int(state.codes1[i])] * scale1 * c.beta1).addingProduct(c.oneMinusBeta1, g)
                            let v = (map2[Int(state.codes2[i])] * scale2 * c.beta2).addingProduct(c.oneMinusBeta2 * g, g)
                            let denominator = v.squareRoot() / c.correction2 + c.epsilon
                            var p = theta[i]
                            if decay { p = p * c.decayFactor }
                            theta[i] = p + (c.negativeStepSize * m) / denominator
                            scratch[j] = m
                            scratch[blockSize + j] = v
                        }
                        signed.quantize(UnsafeBufferPointer(rebasing: scratch[0..<n]), blockSize: blockSize,
                                        codes: UnsafeMutableBufferPointer(start: state.codes1 + start, count: n),
                                        absmax: UnsafeMutableBufferPointer(start: state.absmax1 + b, count: 1))
                        unsigned.quantize(UnsafeBufferPointer(rebasing: scratch[blockSize..<(blockSize + n)]), blockSize: blockSize,
                                          codes: UnsafeMutableBufferPointer(start: state.codes2 + start, count: n),
                                          absmax: UnsafeMutableBufferPointer(start: state.absmax2 + b, count: 1))
                    }
                }
            }
        }
    }

    // MARK: - Inspecting the state

    /// The storage of `slice`'s moments.
    public func storage(of slice: ParameterSlice) -> StateStorage { storage[position(of: slice)] }

    /// The 8-bit codes of one moment of an 8-bit slice (bitsandbytes' `state1` / `state2`), one per
    /// element; empty for a 32-bit slice.
    public func codes(_ moment: Moment, of slice: ParameterSlice) -> UnsafeBufferPointer<UInt8> {
        let s = position(of: slice)
        guard storage[s] == .blockwise8Bit else { return UnsafeBufferPointer(start: nil, count: 0) }
        let start = codes.baseAddress! + (moment == .first ? 0 : codeCount) + codeOffset[s]
        return UnsafeBufferPointer(start: start, count: slice.count)
    }

    /// The per-block absmax of one moment of an 8-bit slice (`absmax1` / `absmax2`), one per 256
    /// elements; empty for a 32-bit slice.
    public func absmax(_ moment: Moment, of slice: ParameterSlice) -> UnsafeBufferPointer<Float> {
        let s = position(of: slice)
        guard storage[s] == .blockwise8Bit else { return UnsafeBufferPointer(start: nil, count: 0) }
        let start = absmax.baseAddress! + (moment == .first ? 0 : blockCount) + blockOffset[s]
        return UnsafeBufferPointer(start: start, count: (slice.count + Self.blockSize - 1) / Self.blockSize)
    }

    /// The values of one moment of `slice`: dequantized (`map[code] · absmax`) for an 8-bit slice,
    /// the arena's Float32 moment otherwise.
    public func moment(_ moment: Moment, of slice: ParameterSlice, in arena: ParameterArena) -> [Float] {
        switch storage(of: slice) {
        case .float32:
            return Array((moment == .first ? arena.firstMoments : arena.secondMoments)[slice.range])
        case .blockwise8Bit:
            let map = moment == .first ? DynamicMap8Bit.standard : DynamicMap8Bit.unsigned
            return map.dequantize(codes: Array(codes(moment, of: slice)), absmax: Array(absmax(moment, of: slice)),
                                  blockSize: Self.blockSize)
        }
    }

    // MARK: - Checkpoints

    /// Every 8-bit code and absmax of the state (both moments), for a checkpoint.
    var stateBytesForCheckpoint: (codes: UnsafeMutableBufferPointer<UInt8>, absmax: UnsafeMutableBufferPointer<Float>) {
        (codes, absmax)
    }

    /// Sets the step count after the state buffers were restored from a checkpoint.
    func restore(stepCount: Int) { self.stepCount = stepCount }

    private func position(of slice: ParameterSlice) -> Int {
        guard let s = index[slice.name], slices[s] == slice else { preconditionFailure("\(slice.name) is not a slice of this optimizer's arena") }
        return s
    }
}
