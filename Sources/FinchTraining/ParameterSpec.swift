/// One trainable tensor to place in a ``ParameterArena``: its checkpoint-style name, its shape, and
/// whether AdamW's weight decay applies to it.
public struct ParameterSpec: Sendable, Equatable {
    /// The name the reference implementation gives the tensor, e.g.
    /// `base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight`.
    public var name: String
    /// Row-major shape; every dimension ≥ 1.
    public var shape: [Int]
    /// Whether AdamW's decoupled weight decay applies (transformers' two parameter groups).
    public var appliesWeightDecay: Bool

    /// A spec whose weight-decay flag follows transformers' rule
    /// (``transformersAppliesWeightDecay(to:inTorchLayerNorm:)``).
    ///
    /// - Parameter inTorchLayerNorm: the tensor belongs to a `torch.nn.LayerNorm` module (at any
    ///   depth) in the reference model; transformers excludes those by type, whatever their name.
    public init(name: String, shape: [Int], inTorchLayerNorm: Bool = false) {
        self.name = name
        self.shape = shape
        self.appliesWeightDecay = Self.transformersAppliesWeightDecay(to: name, inTorchLayerNorm: inTorchLayerNorm)
    }

    /// A spec with an explicit weight-decay flag.
    public init(name: String, shape: [Int], appliesWeightDecay: Bool) {
        self.name = name
        self.shape = shape
        self.appliesWeightDecay = appliesWeightDecay
    }

    /// Element count (the product of the shape).
    public var count: Int { shape.reduce(1, *) }

    /// Whether `Trainer.get_decay_parameter_names` (transformers 5.24, `trainer.py`) keeps a
    /// parameter in the weight-decay group.
    ///
    /// transformers excludes a parameter when it sits under a `torch.nn.LayerNorm` module, or when
    /// its lowercased full name matches one of the regular expressions `bias`, `layernorm`,
    /// `rmsnorm`, `(?:^|\.)norm(?:$|\.)`, `_norm(?:$|\.)` (searched anywhere). It tests every
    /// suffix path of the name while recursing through modules; a match in a suffix is a match in
    /// the full name, so testing the full name is equivalent. Hence `lm_head.weight`,
    /// `…lora_A.default.weight`, `…normalizer.weight` decay; `…q_proj.bias`, `…input_layernorm.weight`,
    /// `model.norm.weight`, `…q_norm.weight` do not. Custom norm classes (LlamaRMSNorm) are only
    /// excluded by name; GPT-2's `ln_1` only by type.
    public static func transformersAppliesWeightDecay(to name: String, inTorchLayerNorm: Bool = false) -> Bool {
        if inTorchLayerNorm { return false }
        let lower = name.lowercased()
        if lower.contains("bias") || lower.contains("layernorm") || lower.contains("rmsnorm") { return false }
        // `(?:^|\.)norm(?:$|\.)` is a dot-separated component equal to "norm"; `_norm(?:$|\.)` is a
        // component ending in "_norm".
        for component in lower.split(separator: ".", omittingEmptySubsequences: false) {
            if component == "norm" || component.hasSuffix("_norm") { return false }
        }
        return true
    }
}
