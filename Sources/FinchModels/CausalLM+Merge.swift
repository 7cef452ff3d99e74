import FinchCore

extension CausalLM {
    /// A copy of this model with `adapter` merged into its weights, as PEFT's `merge_and_unload`
    /// does (trl-dpo.md §8.5): each adapted linear weight becomes `W + s·(B·A)` in Float32 (a
    /// quantized W is dequantized first; the merged weight is Float32). Everything else is shared
    /// with this model. For the merged-base two-stage pipeline: SFT adapter merged, a new adapter
    /// trained on top with the merged base as DPO's reference.
    /// - Parameter requantize: store the merged weights quantized again (nf4/fp4/int8, as
    ///   bitsandbytes' merge into a 4-bit base does: dequantize, add, requantize, which rounds);
    ///   nil or `.none` keeps them Float32.
    public func mergingLoRA(_ adapter: LoRAAdapter, requantize: ModelLoadOptions? = nil, pool: ThreadPool = .serial) throws -> CausalLM {
        try adapter.check(for: self)
        let kind = blockKind
        let scaling = adapter.scaling
        let newBlocks = try blocks.enumerated().map { layer, block -> DecoderBlock in
            func merged(_ module: LinearModule) throws -> Linear? {
                guard let l = block.linear(module) else { return nil }
                guard let name = module.name(layer: layer, kind),
                      let a = adapter.parameters.values(of: name + ".lora_A.weight"),
                      let b = adapter.parameters.values(of: name + ".lora_B.weight") else { return l }
                let out = l.weight.outFeatures, inFeatures = l.weight.inFeatures, r = a.count / inFeatures
                var values = [Float](repeating: 0, count: out * inFeatures)
                values.withUnsafeMutableBufferPointer { w in
                    for o in 0..<out {
                        let row = w.baseAddress! + o * inFeatures
                        l.weight.row(o, into: row)
                        for i in 0..<inFeatures {
                            var delta: Float = 0
                            for k in 0..<r { delta += b[o * r + k] * a[k * inFeatures + i] }
                            row[i] += delta * scaling
                        }
                    }
                }
                let weight: LinearWeight
                switch requantize?.quantization ?? .none {
                case .none:
                    weight = LinearWeight(outFeatures: out, inFeatures: inFeatures, float32: values)
                case .int8:
                    weight = try values.withUnsafeBufferPointer {
                        try LinearWeight(outFeatures: out, inFeatures: inFeatures, quantizingInt8: $0, pool: pool)
                    }
                case .nf4, .fp4:
                    let options = requantize!
                    weight = try values.withUnsafeBufferPointer {
                        try LinearWeight(outFeatures: out, inFeatures: inFeatures, quantizing: $0, type: options.quantization.fourBitType!,
                                         doubleQuantization: options.doubleQuantization, pool: pool)
                    }
                }
                return Linear(weight: weight, bias: l.bias)
            }
            return DecoderBlock(kind: block.kind, inputNorm: block.inputNorm, postAttentionNorm: block.postAttentionNorm,
                                q: try merged(.q)!, k: try merged(.k)!, v: try merged(.v)!, o: try merged(.o)!, gate: try merged(.gate),
                                up: try merged(.up)!, down: try merged(.down)!)
        }
        return CausalLM(copying: self, embedding: embedding, blocks: newBlocks, finalNorm: finalNorm, lmHead: lmHead,
                        lmHeadBias: lmHeadBias, trainableParameters: trainableParameters)
    }
}
