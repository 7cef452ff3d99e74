import FinchCore

/// Where one named trainable tensor lives in a ``ParameterArena``.
public struct ParameterSlice: Sendable, Equatable {
    /// The tensor's name (see ``ParameterSpec/name``).
    public let name: String
    /// Row-major shape.
    public let shape: [Int]
    /// First element, in floats from the start of each buffer; a multiple of
    /// ``ParameterArena/alignment``.
    public let offset: Int
    /// Element count.
    public let count: Int
    /// Whether AdamW's weight decay applies.
    public let appliesWeightDecay: Bool

    /// The slice's elements, `offset ..< offset + count`.
    public var range: Range<Int> { offset..<(offset + count) }
}

/// The trainable parameters of a run, their gradients and AdamW's two moment buffers, as four
/// Float32 buffers with one layout (DESIGN.md §3 "Memory plan", after llm.c's single parameter
/// block): a named slice has the same offset in each, so the optimizer and the gradient norm are
/// flat loops over slices.
///
/// Slices start at multiples of ``alignment`` floats (64 bytes); the padding between them is zero
/// in every buffer and nothing reads or writes it. All buffers start at zero. Memory:
/// 4 × ``floatsPerBuffer`` × 4 bytes, allocated once.
///
/// The arena owns its memory: pointers from ``values``, ``gradients``, … are valid while the arena
/// is alive. It is not thread-safe; kernels that fill gradients from several threads must write
/// disjoint elements.
public final class ParameterArena {
    /// Slice alignment in floats: a cache line, and two 8-wide vectors.
    public static let alignment = 16
    /// Elements per work chunk for the optimizer and the gradient norm. Chunks never cross a slice
    /// and start at multiples of this within it, so results do not depend on the thread count.
    static let chunkSize = 16_384

    /// The slices, in the order of the specs.
    public let slices: [ParameterSlice]
    /// Floats in each of the four buffers (the last slice's end, rounded up to ``alignment``).
    public let floatsPerBuffer: Int
    /// Trainable elements (the sum of the slice counts, padding excluded).
    public let parameterCount: Int

    /// The parameter values.
    public let values: UnsafeMutableBufferPointer<Float>
    /// The gradients, which backward kernels accumulate into (`+=`).
    public let gradients: UnsafeMutableBufferPointer<Float>
    /// AdamW's first moment (torch's `exp_avg`). ``BitsAndBytesAdamW`` keeps the moments of its
    /// 8-bit slices itself and leaves them zero here.
    public let firstMoments: UnsafeMutableBufferPointer<Float>
    /// AdamW's second moment (torch's `exp_avg_sq`; see ``firstMoments``).
    public let secondMoments: UnsafeMutableBufferPointer<Float>

    /// (slice index, element range inside the slice) work items; see ``chunkSize``.
    let chunks: [(slice: Int, elements: Range<Int>)]
    /// One partial sum per chunk, reused by the gradient norm.
    var chunkScratch: [Double]

    private let storage: UnsafeMutableRawPointer
    private let index: [String: Int]

    /// Lays out `specs` in order.
    ///
    /// - Throws: ``TrainingError`` naming the tensor if a name repeats or is empty, or a shape is
    ///   empty or has a dimension < 1.
    public init(_ specs: [ParameterSpec]) throws {
        var slices: [ParameterSlice] = []
        var index: [String: Int] = [:]
        var offset = 0
        for spec in specs {
            guard !spec.name.isEmpty else { throw TrainingError("parameter \(slices.count)", "has an empty name") }
            guard index[spec.name] == nil else { throw TrainingError(spec.name, "appears twice in the trainable parameters") }
            guard !spec.shape.isEmpty, spec.shape.allSatisfy({ $0 >= 1 }) else {
                throw TrainingError(spec.name, "shape \(spec.shape) must have at least one dimension, each ≥ 1")
            }
            index[spec.name] = slices.count
            slices.append(ParameterSlice(name: spec.name, shape: spec.shape, offset: offset, count: spec.count,
                                         appliesWeightDecay: spec.appliesWeightDecay))
            offset += (spec.count + Self.alignment - 1) / Self.alignment * Self.alignment
        }
        self.slices = slices
        self.index = index
        floatsPerBuffer = offset
        parameterCount = slices.reduce(0) { $0 + $1.count }

        let bytes = max(1, 4 * offset) * MemoryLayout<Float>.stride
        storage = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let base = storage.bindMemory(to: Float.self, capacity: 4 * offset)
        values = UnsafeMutableBufferPointer(start: base, count: offset)
        gradients = UnsafeMutableBufferPointer(start: base + offset, count: offset)
        firstMoments = UnsafeMutableBufferPointer(start: base + 2 * offset, count: offset)
        secondMoments = UnsafeMutableBufferPointer(start: base + 3 * offset, count: offset)

        var chunks: [(slice: Int, elements: Range<Int>)] = []
        for (s, slice) in slices.enumerated() {
            for start in stride(from: 0, to: slice.count, by: Self.chunkSize) {
                chunks.append((s, start..<min(slice.count, start + Self.chunkSize)))
            }
        }
        self.chunks = chunks
        chunkScratch = [Double](repeating: 0, count: chunks.count)
    }

    deinit { storage.deallocate() }

    /// The slice called `name`, if any.
    public func slice(named name: String) -> ParameterSlice? { index[name].map { slices[$0] } }

    /// The values of one slice (a view into ``values``).
    public func values(of slice: ParameterSlice) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: values[slice.range])
    }

    /// The gradient of one slice (a view into ``gradients``).
    public func gradient(of slice: ParameterSlice) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: gradients[slice.range])
    }

    /// Sets every gradient to zero (transformers' `model.zero_grad()` after each optimizer step).
    public func zeroGradients() {
        gradients.update(repeating: 0)
    }

    /// `gradient(slice) += scale · g`, elementwise, rounding `scale · g` before the addition as
    /// torch's autograd does (the micro-batch gradient is a tensor, then accumulated into `.grad`).
    ///
    /// With `scale` = ``AccumulationWindow/lossScale`` this is gradient accumulation as in the
    /// transformers Trainer: each micro-batch loss divided by the window's micro-batch count
    /// before backward, the gradients summed.
    ///
    /// - Precondition: `g.count == slice.count`.
    public func accumulateGradient(_ g: UnsafeBufferPointer<Float>, into slice: ParameterSlice, scale: Float = 1) {
        precondition(g.count == slice.count, "gradient for \(slice.name) has \(g.count) elements, expected \(slice.count)")
        let out = gradient(of: slice)
        for i in 0..<slice.count { out[i] += scale * g[i] }
    }
}
