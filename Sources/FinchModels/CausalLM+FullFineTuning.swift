import FinchCore

extension CausalLM {
    /// Every parameter with how to copy it as Float32, in PyTorch's `named_parameters()` order.
    /// - Parameter dequantizing: allow quantized weights (dequantized bit-exactly), for export;
    ///   full fine-tuning refuses them.
    func fullParameterEntries(dequantizing: Bool = false) throws -> [(name: String, shape: [Int], copy: (UnsafeMutablePointer<Float>) -> Void)] {
        var entries: [(name: String, shape: [Int], copy: (UnsafeMutablePointer<Float>) -> Void)] = []
        func weight(_ name: String, _ w: LinearWeight) throws {
            switch w.storage {
            case _ where dequantizing: break
            case .float32, .float16, .bfloat16: break
            case .ggml(let type, _) where type == .f32 || type == .f16 || type == .bf16: break
            case .ggml(let type, _):
                throw ModelError(path, "full fine-tuning needs float weights, but '\(name)' is stored as \(type.name); train a LoRA adapter on quantized models")
            case .fourBit, .int8Rows:
                throw ModelError(path, "full fine-tuning needs float weights, but '\(name)' is stored by bitsandbytes (4-bit or int8); train a LoRA adapter instead")
            }
            entries.append((name, [w.outFeatures, w.inFeatures], { out in
                for r in 0..<w.outFeatures { w.row(r, into: out + r * w.inFeatures) }
            }))
        }
        func vector(_ name: String, _ v: ParameterVector) {
            entries.append((name, [v.count], { $0.update(from: v.pointer, count: v.count) }))
        }
        let kind = blockKind
        try weight("model.embed_tokens.weight", embedding)
        for (layer, block) in blocks.enumerated() {
            for module in LinearModule.allCases {
                guard let linear = block.linear(module), let name = module.name(layer: layer, kind) else { continue }
                try weight(name + ".weight", linear.weight)
                if let bias = linear.bias { vector(name + ".bias", bias) }
            }
            for (suffix, v) in block.inputNorm.parameters { vector("model.layers.\(layer).input_layernorm.\(suffix)", v) }
            for (suffix, v) in block.postAttentionNorm?.parameters ?? [] {
                vector("model.layers.\(layer).post_attention_layernorm.\(suffix)", v)
            }
        }
        let finalName = kind == .phi ? "model.final_layernorm" : "model.norm"
        for (suffix, v) in finalNorm.parameters { vector("\(finalName).\(suffix)", v) }
        if !tiedEmbeddings { try weight("lm_head.weight", lmHead) }
        if let lmHeadBias { vector("lm_head.bias", lmHeadBias) }
        return entries
    }

    /// The names and shapes of every parameter, in `trainableCopy()`'s order (PyTorch's
    /// `named_parameters()`), e.g. to lay out an optimizer's arena before the copy.
    /// - Throws: `ModelError` if a weight is block-quantized.
    public func trainableParameterShapes() throws -> [(name: String, shape: [Int])] {
        try fullParameterEntries().map { ($0.name, $0.shape) }
    }

    /// A copy of this model whose every parameter — embeddings, linear weights, biases, norm
    /// weights and biases, the lm_head unless tied — is Float32 in one `TrainableParameters` arena
    /// (`trainableParameters`), for full fine-tuning of small models. Training passes on the copy
    /// accumulate gradients for all of them; with tied embeddings the one shared tensor
    /// (`model.embed_tokens.weight`) receives both the embedding's and the lm_head's gradient,
    /// as in PyTorch. Tensor names and order are PyTorch's `named_parameters()`.
    ///
    /// Costs 8 bytes per parameter (values + gradients), plus what an optimizer keeps.
    /// - Throws: `ModelError` if a weight is block-quantized (Q4_1, Q8_0, …): quantized bases only
    ///   train through LoRA.
    /// - Parameter values: where the Float32 copies live (e.g. an optimizer's arena laid out from
    ///   `trainableParameterShapes()`); nil: memory of the copy's own.
    public func trainableCopy(values: ExternalValues? = nil) throws -> CausalLM {
        let entries = try fullParameterEntries()
        let kind = blockKind
        let finalName = kind == .phi ? "model.final_layernorm" : "model.norm"
        let tied = tiedEmbeddings

        let shapes = entries.map { (name: $0.name, shape: $0.shape) }
        let parameters: TrainableParameters
        if let values {
            guard values.count >= TrainableParameters.floatCount(for: shapes) else {
                throw ModelError(path, "full fine-tuning needs \(TrainableParameters.floatCount(for: shapes)) floats of storage, given \(values.count)")
            }
            parameters = TrainableParameters(shapes, values: values)
            parameters.values.update(repeating: 0, count: parameters.count)
        } else {
            parameters = TrainableParameters(shapes)
        }
        for e in entries { e.copy(parameters.values(of: e.name)!.baseAddress!) }

        func trainable(_ name: String, _ w: LinearWeight) -> LinearWeight {
            LinearWeight(outFeatures: w.outFeatures, inFeatures: w.inFeatures,
                         storage: .float32(UnsafePointer(parameters.values(of: name)!.baseAddress!)), owner: parameters)
        }
        func trainable(_ name: String, _ v: ParameterVector) -> ParameterVector {
            ParameterVector(pointer: parameters.values(of: name)!.baseAddress!, count: v.count, owner: parameters)
        }
        func trainable(_ prefix: String, _ norm: Norm) -> Norm {
            switch norm {
            case let .rms(w, eps): .rms(trainable(prefix + ".weight", w), epsilon: eps)
            case let .layer(w, b, eps): .layer(trainable(prefix + ".weight", w), trainable(prefix + ".bias", b), epsilon: eps)
            }
        }
        let newEmbedding = trainable("model.embed_tokens.weight", embedding)
        let newBlocks = blocks.enumerated().map { layer, block in
            func linear(_ module: LinearModule) -> Linear? {
                guard let l = block.linear(module), let name = module.name(layer: layer, kind) else { return nil }
                return Linear(weight: trainable(name + ".weight", l.weight), bias: l.bias.map { trainable(name + ".bias", $0) })
            }
            return DecoderBlock(kind: block.kind,
                                inputNorm: trainable("model.layers.\(layer).input_layernorm", block.inputNorm),
                                postAttentionNorm: block.postAttentionNorm.map { trainable("model.layers.\(layer).post_attention_layernorm", $0) },
                                q: linear(.q)!, k: linear(.k)!, v: linear(.v)!, o: linear(.o)!, gate: linear(.gate),
                                up: linear(.up)!, down: linear(.down)!)
        }
        return CausalLM(copying: self, embedding: newEmbedding, blocks: newBlocks, finalNorm: trainable(finalName, finalNorm),
                        lmHead: tied ? newEmbedding : trainable("lm_head.weight", lmHead),
                        lmHeadBias: lmHeadBias.map { trainable("lm_head.bias", $0) }, trainableParameters: parameters)
    }
}
