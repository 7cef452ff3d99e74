/// How LoRA dropout behaves in a training forward pass (PEFT applies `nn.Dropout(lora_dropout)`
/// to each adapted module's input, in training mode only, before A). With `lora_dropout = p`, an
/// input element is kept with probability 1 − p and scaled by `1/(1 − p)`; each module draws its
/// own mask, also when several share an input (q, k, v).
public enum LoRADropout: Sendable {
    /// No dropout: evaluation, reference passes, or to reproduce PEFT's eval mode.
    case off
    /// Masks from a counter-based generator: element (t, i) of module m is kept when
    /// `hash(seed, m, t, i) ≥ p`, so the backward pass (and a checkpointing recompute) regenerates
    /// the same mask without storing it. Use a new seed for every micro-batch.
    case random(seed: UInt64)
    /// Explicit keep flags by PEFT module name (`model.layers.0.self_attn.q_proj`): `(T, in)`
    /// row-major over the packed batch's rows, 0 (dropped) or 1 (kept). The adapter input is
    /// `x · keep / (1 − p)`. A module without an entry is not dropped. For tests against PyTorch,
    /// whose masks cannot be reproduced in Swift.
    case masks([String: [Float]])
}

/// The dropout of one pass, resolved for an adapter: multiplies a module's input by its mask.
struct DropoutPlan: @unchecked Sendable {
    let mode: LoRADropout
    /// 1 − p.
    let keepProbability: Float
    /// `1/(1 − p)` in Float32, as `nn.Dropout` scales kept elements.
    let scale: Float

    /// Nil when the pass has no dropout.
    init?(_ mode: LoRADropout, probability p: Double) {
        if case .off = mode { return nil }
        guard p > 0 else { return nil }
        self.mode = mode
        keepProbability = Float(1 - p)
        scale = 1 / Float(1 - p)
    }

    /// Whether `module` is dropped at all in this pass.
    func applies(to module: LoRAModule) -> Bool {
        if case .masks(let masks) = mode { return masks[module.name] != nil }
        return true
    }

    /// `out[t, i] = x[t, i] · keep(t, i) · scale` for `x: (T, in)`; `out` may be `x`. (Also the
    /// backward: the input gradient of dropout is the upstream gradient through the same mask.)
    func apply(_ module: LoRAModule, _ x: UnsafePointer<Float>, tokens T: Int, into out: UnsafeMutablePointer<Float>) {
        let n = module.inFeatures
        let scale = self.scale
        switch mode {
        case .off:
            if UnsafePointer(out) != x { out.update(from: x, count: T * n) }
        case .masks(let masks):
            guard let mask = masks[module.name] else {
                if UnsafePointer(out) != x { out.update(from: x, count: T * n) }
                return
            }
            precondition(mask.count == T * n, "LoRA dropout mask for \(module.name) has \(mask.count) values, expected \(T)×\(n)")
            mask.withUnsafeBufferPointer { m in
                for e in 0..<(T * n) { out[e] = m[e] != 0 ? x[e] * scale : 0 }
            }
        case .random(let seed):
            // keep ⇔ u ≥ p, with u uniform in [0, 1) from the top 24 bits of a hash of the counter.
            let threshold = UInt64(((1 - Double(keepProbability)) * 16_777_216).rounded(.up))
            let key = SplitMix64.mix(seed ^ (UInt64(module.ordinal) &* 0xD1B5_4A32_D192_ED03))
            for e in 0..<(T * n) {
                let bits = SplitMix64.mix(key &+ UInt64(e) &* 0x9E37_79B9_7F4A_7C15) >> 40
                out[e] = bits >= threshold ? x[e] * scale : 0
            }
        }
    }
}
