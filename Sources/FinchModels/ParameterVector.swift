import FinchCore

/// A Float32 vector parameter (a norm's weight or bias, a linear layer's bias) at a stable address:
/// its own buffer in a loaded model, or a slice of a `TrainableParameters` arena in a fully
/// trainable copy (so an optimizer step on the arena is what the next forward reads).
struct ParameterVector: @unchecked Sendable {
    // @unchecked: written only by an optimizer between passes, never during one.
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    /// Keeps the memory alive.
    let owner: AnyObject

    /// A copy of `values` in its own buffer.
    init(_ values: [Float]) {
        let buffer = FloatBuffer(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { buffer.pointer.update(from: base, count: values.count) }
        }
        pointer = buffer.pointer
        count = values.count
        owner = buffer
    }

    init(pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
    }

    /// `rows` rows of `buffer` (each `count` wide) += this vector.
    func add(to buffer: UnsafeMutablePointer<Float>, rows: Int) {
        for r in 0..<rows { Activations.add(buffer + r * count, pointer, count: count) }
    }
}

/// A linear layer of a block: its weight in any storage kind and an optional Float32 bias.
struct Linear: @unchecked Sendable {
    let weight: LinearWeight
    let bias: ParameterVector?

    var inFeatures: Int { weight.inFeatures }
    var outFeatures: Int { weight.outFeatures }
}

/// The linear modules of a decoder block, in PyTorch's registration order. Their PEFT names
/// differ by architecture (`moduleName`): Phi calls the attention output `dense` and its MLP
/// `fc1`/`fc2`, and has no gate.
enum LinearModule: Int, CaseIterable, Sendable {
    case q, k, v, o, gate, up, down

    /// The module path inside `model.layers.N.`, or nil if the architecture has no such module.
    func path(_ kind: DecoderBlock.Kind) -> String? {
        switch (self, kind) {
        case (.q, _): "self_attn.q_proj"
        case (.k, _): "self_attn.k_proj"
        case (.v, _): "self_attn.v_proj"
        case (.o, .llama): "self_attn.o_proj"
        case (.o, .phi): "self_attn.dense"
        case (.gate, .llama): "mlp.gate_proj"
        case (.gate, .phi): nil
        case (.up, .llama): "mlp.up_proj"
        case (.up, .phi): "mlp.fc1"
        case (.down, .llama): "mlp.down_proj"
        case (.down, .phi): "mlp.fc2"
        }
    }

    /// PEFT's module name, e.g. `model.layers.0.self_attn.q_proj`.
    func name(layer: Int, _ kind: DecoderBlock.Kind) -> String? {
        path(kind).map { "model.layers.\(layer).\($0)" }
    }
}
