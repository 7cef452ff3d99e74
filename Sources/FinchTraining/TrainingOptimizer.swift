import FinchCore
import FinchFormats

/// The values of transformers' `optim` argument (`OptimizerNames`, transformers 5.24) that Finch
/// implements. The rest of transformers' list (Adafactor, Lion, GaLore, torchao, …) is rejected
/// when the arguments are decoded.
public enum OptimizerName: String, Codable, Sendable, CaseIterable {
    /// `torch.optim.AdamW` (unfused): ``AdamW``, to a few ulps (torch's `√` is not correctly rounded).
    case adamwTorch = "adamw_torch"
    /// `torch.optim.AdamW(fused=True)`, transformers 5.24's default with torch ≥ 2.8: ``AdamW``, bit for bit.
    case adamwTorchFused = "adamw_torch_fused"
    /// `bnb.optim.AdamW(optim_bits=8)`: ``BitsAndBytesAdamW`` with 8-bit states.
    case adamwBnb8bit = "adamw_bnb_8bit"
    /// transformers' alias of `adamw_bnb_8bit`.
    case adamw8bit = "adamw_8bit"
    /// `bnb.optim.AdamW(optim_bits=8, is_paged=True)`: the same as `adamw_8bit` without a GPU.
    case pagedAdamw8bit = "paged_adamw_8bit"
    /// `bnb.optim.AdamW(optim_bits=32, is_paged=True)`: ``BitsAndBytesAdamW`` with 32-bit states —
    /// bitsandbytes' own AdamW step, which rounds differently from torch's (not `adamw_torch_fused`).
    case pagedAdamw32bit = "paged_adamw_32bit"

    /// bitsandbytes' `optim_bits` for the bitsandbytes optimizers (transformers: 8 when the name
    /// contains `8bit`), nil for torch's.
    public var bitsAndBytesStateBits: Int? {
        switch self {
        case .adamwTorch, .adamwTorchFused: nil
        case .adamwBnb8bit, .adamw8bit, .pagedAdamw8bit: 8
        case .pagedAdamw32bit: 32
        }
    }

    /// Whether bitsandbytes would page the state between GPU and CPU memory (transformers: the
    /// name contains `paged`).
    public var isPaged: Bool { rawValue.hasPrefix("paged_") }

    /// A one-line notice for the trainer to log once, or nil: paging needs a GPU, so a paged
    /// optimizer runs unpaged — as bitsandbytes itself does on a CPU ("Paged optimizers are not
    /// supported on CPU. Falling back to non-paged optimizer behavior."), with the same results.
    public var notice: String? {
        guard isPaged else { return nil }
        let unpaged = self == .pagedAdamw8bit ? "adamw_8bit" : "bitsandbytes' 32-bit AdamW"
        return "optim \(rawValue): paging moves optimizer state between GPU and CPU memory, and Finch trains on the CPU, "
            + "so the state stays in ordinary memory (the same steps as \(unpaged), as bitsandbytes does on a CPU)"
    }
}

/// The optimizer a transformers Trainer builds for ``TrainingArguments/optim``, over one
/// ``ParameterArena``.
public struct TrainingOptimizer {
    /// The `optim` value it was built for.
    public let name: OptimizerName
    /// The implementation.
    public private(set) var algorithm: Algorithm

    public enum Algorithm {
        /// torch's AdamW; its moments are the arena's ``ParameterArena/firstMoments`` and
        /// ``ParameterArena/secondMoments``.
        case torchAdamW(AdamW)
        /// bitsandbytes' AdamW (8- or 32-bit state).
        case bitsAndBytesAdamW(BitsAndBytesAdamW)
    }

    /// The optimizer for `arguments.optim` over `arena`, with `arguments`' betas, ε and weight decay.
    ///
    /// - Parameter embeddingParameters: the slices that are weights of `nn.Embedding` modules in
    ///   the reference model (e.g. `model.embed_tokens.weight` when it is trained). With an 8-bit
    ///   optimizer, transformers registers them with bitsandbytes for 32-bit state
    ///   (`Trainer.create_optimizer`); other optimizers ignore this.
    /// - Throws: ``TrainingError`` if a name in `embeddingParameters` is not a slice of the arena.
    public init(_ arguments: TrainingArguments, arena: ParameterArena, embeddingParameters: Set<String> = []) throws {
        name = arguments.optim
        if let bits = arguments.optim.bitsAndBytesStateBits {
            algorithm = .bitsAndBytesAdamW(try BitsAndBytesAdamW(arguments, arena: arena, stateBits: bits,
                                                                 float32Parameters: bits == 8 ? embeddingParameters : []))
        } else {
            for name in embeddingParameters.sorted() where arena.slice(named: name) == nil {
                throw TrainingError(name, "is listed as an embedding weight but is not a trainable parameter")
            }
            algorithm = .torchAdamW(AdamW(arguments))
        }
    }

    /// Takes one optimizer step at `learningRate` (see ``AdamW/step(_:learningRate:pool:)`` and
    /// ``BitsAndBytesAdamW/step(_:learningRate:pool:)``).
    public mutating func step(_ arena: ParameterArena, learningRate: Double, pool: ThreadPool = .serial) {
        switch algorithm {
        case .torchAdamW(var adamW):
            adamW.step(arena, learningRate: learningRate, pool: pool)
            algorithm = .torchAdamW(adamW)
        case .bitsAndBytesAdamW(let optimizer):
            optimizer.step(arena, learningRate: learningRate, pool: pool)
        }
    }

    /// Optimizer steps taken so far.
    public var stepCount: Int {
        switch algorithm {
        case .torchAdamW(let adamW): adamW.stepCount
        case .bitsAndBytesAdamW(let optimizer): optimizer.stepCount
        }
    }

    /// Bytes of optimizer state for `arena`: 8 per element for Float32 moments (which live in the
    /// arena), see ``BitsAndBytesAdamW/stateBytes`` for the 8-bit ones.
    public func stateBytes(for arena: ParameterArena) -> Int {
        switch algorithm {
        case .torchAdamW: 8 * arena.parameterCount
        case .bitsAndBytesAdamW(let optimizer): optimizer.stateBytes
        }
    }

    /// ``OptimizerName/notice``: log it once when training starts.
    public var notice: String? { name.notice }
}

extension TrainingOptimizer {
    /// The optimizer's state as safetensors entries for a checkpoint: the arena's Float32 moments
    /// (`exp_avg`, `exp_avg_sq`) and, for bitsandbytes' 8-bit slices, their codes and block
    /// absmax; the step count goes in the metadata (``checkpointMetadata``).
    public func checkpointEntries(arena: ParameterArena) -> [SafeTensorsWriter.Entry] {
        var entries = [
            SafeTensorsWriter.Entry(name: "exp_avg", shape: [arena.firstMoments.count], float32: Array(arena.firstMoments)),
            SafeTensorsWriter.Entry(name: "exp_avg_sq", shape: [arena.secondMoments.count], float32: Array(arena.secondMoments)),
        ]
        if case .bitsAndBytesAdamW(let optimizer) = algorithm {
            let (codes, absmax) = optimizer.stateBytesForCheckpoint
            entries.append(SafeTensorsWriter.Entry(name: "codes", dtype: .u8, shape: [codes.count], bytes: Array(codes)))
            entries.append(SafeTensorsWriter.Entry(name: "absmax", shape: [absmax.count], float32: Array(absmax)))
        }
        return entries
    }

    public var checkpointMetadata: [String: String] { ["optim": name.rawValue, "step_count": String(stepCount)] }

    /// Restores what ``checkpointEntries(arena:)`` saved. Errors name the file and what differs.
    public mutating func restore(from file: SafeTensorsFile, path: String, arena: ParameterArena) throws {
        guard file.metadata["optim"] == name.rawValue else {
            throw TrainingError("optim", "the checkpoint \(path) was written by optim \(file.metadata["optim"] ?? "?"), this run uses \(name.rawValue)")
        }
        guard let steps = file.metadata["step_count"].flatMap(Int.init), steps >= 0 else {
            throw TrainingError("resume_from_checkpoint", "\(path) has no step_count")
        }
        func load<T>(_ key: String, into buffer: UnsafeMutableBufferPointer<T>, _ read: (String) throws -> [T]) throws {
            let values = try read(key)
            guard values.count == buffer.count else {
                throw TrainingError("resume_from_checkpoint", "\(path): '\(key)' has \(values.count) values, this run needs \(buffer.count)")
            }
            _ = buffer.update(fromContentsOf: values)
        }
        try load("exp_avg", into: arena.firstMoments) { try file.float32($0) }
        try load("exp_avg_sq", into: arena.secondMoments) { try file.float32($0) }
        switch algorithm {
        case .torchAdamW(var adamW):
            adamW.restore(stepCount: steps)
            algorithm = .torchAdamW(adamW)
        case .bitsAndBytesAdamW(let optimizer):
            let (codes, absmax) = optimizer.stateBytesForCheckpoint
            try load("codes", into: codes) { Array(try file.data($0)) }
            try load("absmax", into: absmax) { try file.float32($0) }
            optimizer.restore(stepCount: steps)
        }
    }
}
