import FinchCore

/// Keys and values of every layer for one sequence, plus the scratch buffers its forward passes
/// reuse (so decoding allocates nothing per token once warmed up).
public final class KVCache: @unchecked Sendable {
    // @unchecked: a cache belongs to one sequence and is used by one forward pass at a time.
    public let capacity: Int
    public private(set) var count = 0
    /// The token ids at positions 0..<count.
    public private(set) var tokens: [Int] = []
    let rowWidth: Int // kvHeads · headDim
    let keys: [FloatBuffer]
    let values: [FloatBuffer]
    var workspace = Workspace()

    init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int) {
        self.capacity = capacity
        rowWidth = kvHeads * headDim
        keys = (0..<layers).map { _ in FloatBuffer(count: capacity * kvHeads * headDim) }
        values = (0..<layers).map { _ in FloatBuffer(count: capacity * kvHeads * headDim) }
    }

    /// Forgets everything (the buffers are kept).
    public func reset() { count = 0; tokens.removeAll(keepingCapacity: true) }

    /// Drops positions from `newCount` on (e.g. to reuse a shared prompt prefix).
    public func truncate(to newCount: Int) {
        precondition(newCount >= 0 && newCount <= count)
        count = newCount
        tokens.removeLast(tokens.count - newCount)
    }

    func append(_ newTokens: [Int]) {
        count += newTokens.count
        tokens += newTokens
    }
}

/// A fixed-size, 64-byte aligned Float32 allocation.
final class FloatBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    /// The memory is not written here, so a large KV cache costs address space, not resident
    /// memory, until positions are used. Every element is written before it is read.
    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// Reusable Float32 scratch by name, grown on demand.
struct Workspace {
    private var buffers: [String: FloatBuffer] = [:]

    mutating func buffer(_ name: String, _ size: Int) -> UnsafeMutablePointer<Float> {
        if let b = buffers[name], b.count >= size { return b.pointer }
        let b = FloatBuffer(count: size)
        buffers[name] = b
        return b.pointer
    }
}
