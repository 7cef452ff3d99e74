import FinchCore

/// Trainable Float32 tensors and their gradients, each in one flat arena with named slices
/// (DESIGN.md §3, "Memory plan"): a LoRA adapter's A and B matrices, or every parameter of a fully
/// trainable model.
///
/// `values` and `gradients` have the same layout: tensor i occupies `offset ..< offset + count` of
/// both. Tensors start on 64-byte boundaries; the padding between them is zero in both arenas and
/// stays zero under any elementwise optimizer (its gradient is 0), so an optimizer may run over
/// the whole `count` as one flat vector. Backward passes *accumulate* into `gradients` (so several
/// micro-batches add up); call `zeroGradients()` after each optimizer step.
///
/// The values may live in memory another object owns (`init(_:values:)`): an optimizer's arena can
/// then update them in place, while the gradients of each backward stay here to be accumulated
/// into the optimizer's own gradient buffer with its loss scale.
///
/// Not thread-safe: one pass or one optimizer step at a time.
public final class TrainableParameters: @unchecked Sendable {
    /// One named tensor of the arena.
    public struct Tensor: Sendable, Equatable {
        /// The PyTorch name (`model.layers.0.self_attn.q_proj.lora_A.weight`, `model.norm.weight`).
        public let name: String
        /// Row-major shape (`[r, in]` for LoRA A, `[out, r]` for B, `[out, in]` for a weight).
        public let shape: [Int]
        /// First element in `values` and `gradients`.
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public let tensors: [Tensor]
    /// Floats in each arena, padding included.
    public let count: Int
    /// The parameter values (`count` floats).
    public let values: UnsafeMutablePointer<Float>
    /// The accumulated gradients (`count` floats), same layout as `values`.
    public let gradients: UnsafeMutablePointer<Float>
    private let index: [String: Int]
    /// Keeps external values alive (nil: `values` is ours).
    private let valuesOwner: AnyObject?

    /// Number of parameters (padding excluded).
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.count } }

    /// Zero-filled tensors of the given names and shapes, in that order, in memory of their own.
    public convenience init(_ shapes: [(name: String, shape: [Int])]) {
        self.init(shapes, storage: nil)
    }

    /// Tensors whose values live in `values` — e.g. an optimizer's arena (FinchTraining's
    /// `ParameterArena`, whose slices are laid out by the same rule: in order, each starting on a
    /// multiple of 16 floats, so the offsets agree) — and whose gradients live here. The values
    /// are not touched; the gradients start at zero.
    /// - Precondition: `values.count ≥ Self.floatCount(for: shapes)`.
    public convenience init(_ shapes: [(name: String, shape: [Int])], values: ExternalValues) {
        self.init(shapes, storage: values)
    }

    private init(_ shapes: [(name: String, shape: [Int])], storage external: ExternalValues?) {
        var tensors: [Tensor] = [], index: [String: Int] = [:], offset = 0
        for (name, shape) in shapes {
            precondition(index[name] == nil, "TrainableParameters: two tensors named '\(name)'")
            index[name] = tensors.count
            tensors.append(Tensor(name: name, shape: shape, offset: offset))
            offset += (shape.reduce(1, *) + 15) / 16 * 16
        }
        self.tensors = tensors
        self.index = index
        count = offset
        if let external {
            precondition(external.count >= offset, "TrainableParameters: \(external.count) external floats for a layout of \(offset)")
            values = external.pointer
            valuesOwner = external.owner
        } else {
            values = Self.allocate(offset)
            valuesOwner = nil
        }
        gradients = Self.allocate(offset)
    }

    deinit {
        if valuesOwner == nil { UnsafeMutableRawPointer(values).deallocate() }
        UnsafeMutableRawPointer(gradients).deallocate()
    }

    /// Floats a layout of these tensors takes (padding included): the size of `values`.
    public static func floatCount(for shapes: [(name: String, shape: [Int])]) -> Int {
        shapes.reduce(0) { $0 + ($1.shape.reduce(1, *) + 15) / 16 * 16 }
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        let pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        return pointer
    }

    /// The tensor named `name`, or nil.
    public func tensor(named name: String) -> Tensor? { index[name].map { tensors[$0] } }

    /// The values of tensor `name` (writable: load or set parameters through it), or nil.
    public func values(of name: String) -> UnsafeMutableBufferPointer<Float>? {
        tensor(named: name).map { UnsafeMutableBufferPointer(start: values + $0.offset, count: $0.count) }
    }

    /// The accumulated gradient of tensor `name`, or nil.
    public func gradients(of name: String) -> UnsafeMutableBufferPointer<Float>? {
        tensor(named: name).map { UnsafeMutableBufferPointer(start: gradients + $0.offset, count: $0.count) }
    }

    /// Sets tensor `name` to `newValues` (row-major, its element count).
    public func setValues(of name: String, to newValues: [Float]) throws {
        guard let buffer = values(of: name) else {
            throw ModelError(name, "no trainable tensor of that name (there are \(tensors.count), e.g. '\(tensors.first?.name ?? "")')")
        }
        guard newValues.count == buffer.count else {
            throw ModelError(name, "\(newValues.count) values for a tensor of shape \(tensor(named: name)!.shape)")
        }
        _ = buffer.update(fromContentsOf: newValues)
    }

    /// Sets every gradient to zero.
    public func zeroGradients() { gradients.update(repeating: 0, count: count) }

    /// The gradient slot of a parameter that lives in `values`, or nil if it lives elsewhere
    /// (a frozen parameter).
    func gradient(of pointer: UnsafePointer<Float>) -> UnsafeMutablePointer<Float>? {
        let offset = pointer - UnsafePointer(values)
        guard offset >= 0, offset < count else { return nil }
        return gradients + offset
    }

    func gradient(of vector: ParameterVector) -> UnsafeMutablePointer<Float>? { gradient(of: vector.pointer) }

    func gradient(of weight: LinearWeight) -> UnsafeMutablePointer<Float>? {
        guard case .float32(let p) = weight.storage else { return nil }
        return gradient(of: p)
    }
}

/// Float32 memory that another object owns, for `TrainableParameters` values.
public struct ExternalValues: @unchecked Sendable {
    public var pointer: UnsafeMutablePointer<Float>
    /// Floats available from `pointer`.
    public var count: Int
    /// Kept alive as long as the parameters are.
    public var owner: AnyObject

    public init(pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
    }
}
