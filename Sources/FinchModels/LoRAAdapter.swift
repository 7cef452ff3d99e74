import FinchCore
import FinchFormats

/// A named LoRA adapter for one model (Hu et al. 2021, as PEFT implements it): for each targeted
/// linear module, `A: [r, in]` and `B: [out, r]` in one `TrainableParameters` arena, with
/// gradients beside them.
///
/// An adapter is made for a model (it checks the model's configuration at every pass), and several
/// can exist for the same model: each forward pass says which one is active, or that none is
/// (`adapter: nil` is the base model, PEFT's `disable_adapter()`), e.g. a policy adapter and a
/// frozen reference adapter in DPO. The base weights are never modified.
///
/// Parameter names are PEFT's without the `base_model.model.` prefix of its files:
/// `model.layers.0.self_attn.q_proj.lora_A.weight`, `….lora_B.weight`.
public final class LoRAAdapter: @unchecked Sendable {
    // @unchecked: the parameters change only between passes (optimizer steps, loading).
    public let name: String
    public let configuration: LoRAConfiguration
    /// `lora_alpha / r`, or `lora_alpha / √r` with rsLoRA.
    public let scaling: Float
    /// The adapted modules' PEFT names, in model order (layer by layer; q, k, v, o, gate, up, down).
    public let moduleNames: [String]
    /// A and B of every adapted module, and their gradients.
    public let parameters: TrainableParameters
    /// The model configuration the adapter was made for.
    public let modelConfiguration: ModelConfiguration
    /// Indexed by `layer * LinearModule.allCases.count + module.rawValue`.
    let modules: [LoRAModule?]
    /// The adapted modules grouped by the input they read, indexed by
    /// `layer * LoRAInput.allCases.count + input.rawValue`.
    let groups: [LoRAGroup?]

    /// A new adapter on the modules `configuration.targetModules` selects, initialized as PEFT's
    /// `init_lora_weights=True`: `A ~ U(−1/√in, 1/√in)` (Kaiming-uniform with a = √5 on `[r, in]`)
    /// drawn from a generator seeded with `seed`, and `B = 0`, so the adapted model computes
    /// exactly what the base model computes until B is trained.
    /// - Throws: `ModelError` for invalid hyperparameters or a `target_modules` entry that matches
    ///   no module (the message lists the modules that exist).
    /// - Parameter values: where A and B live (e.g. an optimizer's arena laid out from
    ///   `parameterShapes(configuration:model:)`, in that order); nil: memory of the adapter's own.
    ///   Either way A is drawn and B zeroed here.
    public init(name: String = "default", configuration: LoRAConfiguration, model: CausalLM, seed: UInt64,
                values: ExternalValues? = nil) throws {
        let chosen = try Self.plan(configuration, model)
        let shapes = Self.shapes(chosen, rank: configuration.r, kind: model.blockKind)
        let parameters: TrainableParameters
        if let values {
            guard values.count >= TrainableParameters.floatCount(for: shapes) else {
                throw ModelError(model.path, "LoRA adapter '\(name)' needs \(TrainableParameters.floatCount(for: shapes)) floats of storage, given \(values.count)")
            }
            parameters = TrainableParameters(shapes, values: values)
            parameters.values.update(repeating: 0, count: parameters.count)
        } else {
            parameters = TrainableParameters(shapes)
        }
        let r = configuration.r
        var generator = SplitMix64(seed: seed)
        var modules = [LoRAModule?](repeating: nil, count: model.blocks.count * LinearModule.allCases.count)
        // A is drawn module by module in model order, whatever the arena's layout.
        for (ordinal, c) in chosen.enumerated() {
            let a = parameters.tensor(named: c.name + ".lora_A.weight")!, b = parameters.tensor(named: c.name + ".lora_B.weight")!
            let bound = 1 / Float(c.linear.inFeatures).squareRoot()
            for i in 0..<a.count { parameters.values[a.offset + i] = generator.uniform(bound: bound) }
            modules[c.layer * LinearModule.allCases.count + c.module.rawValue] = LoRAModule(
                ordinal: ordinal, name: c.name, module: c.module, rank: r, inFeatures: c.linear.inFeatures,
                outFeatures: c.linear.outFeatures, a: parameters.values + a.offset, b: parameters.values + b.offset,
                aGradient: parameters.gradients + a.offset, bGradient: parameters.gradients + b.offset)
        }
        var groups = [LoRAGroup?](repeating: nil, count: model.blocks.count * LoRAInput.allCases.count)
        for layer in model.blocks.indices {
            for input in LoRAInput.allCases {
                let members = input.modules(model.blockKind).compactMap { modules[layer * LinearModule.allCases.count + $0.rawValue] }
                guard !members.isEmpty else { continue }
                groups[layer * LoRAInput.allCases.count + input.rawValue] = LoRAGroup(members: members)
            }
        }
        self.name = name
        self.configuration = configuration
        self.scaling = configuration.scaling
        self.moduleNames = chosen.map(\.name)
        self.parameters = parameters
        self.modelConfiguration = model.configuration
        self.modules = modules
        self.groups = groups
    }

    /// The names and shapes of the tensors an adapter with `configuration` has on `model`, in the
    /// order of its `parameters`, without making one: to lay out an optimizer's arena first and
    /// pass its memory as `values`. Layer by layer, the modules that read the same input (q, k, v
    /// — and Phi's fc1 — read the attention norm's output; Llama's gate and up the MLP norm's)
    /// come together, their A matrices first, so that one product serves them all.
    public static func parameterShapes(configuration: LoRAConfiguration, model: CausalLM) throws -> [(name: String, shape: [Int])] {
        shapes(try plan(configuration, model), rank: configuration.r, kind: model.blockKind)
    }

    private typealias Choice = (layer: Int, module: LinearModule, name: String, linear: Linear)

    /// The adapted modules, in model order.
    private static func plan(_ configuration: LoRAConfiguration, _ model: CausalLM) throws -> [Choice] {
        try configuration.validate(path: model.path)
        let kind = model.blockKind
        let defaults: [String] = switch kind {
        case .llama: ["q_proj", "v_proj"]
        case .phi: ["q_proj", "v_proj", "fc1", "fc2"]
        }
        let selected = Set(try configuration.targetModules.resolve(in: model.linearModuleNames, architecture: model.configuration.sourceModelType,
                                                                    defaults: defaults, path: model.path))
        var chosen: [Choice] = []
        for (layer, block) in model.blocks.enumerated() {
            for module in LinearModule.allCases {
                guard let name = module.name(layer: layer, kind), selected.contains(name), let linear = block.linear(module) else { continue }
                chosen.append((layer, module, name, linear))
            }
        }
        return chosen
    }

    private static func shapes(_ chosen: [Choice], rank r: Int, kind: DecoderBlock.Kind) -> [(name: String, shape: [Int])] {
        var shapes: [(name: String, shape: [Int])] = []
        for layer in Set(chosen.map(\.layer)).sorted() {
            for input in LoRAInput.allCases {
                let members = input.modules(kind).compactMap { m in chosen.first { $0.layer == layer && $0.module == m } }
                shapes += members.map { ($0.name + ".lora_A.weight", [r, $0.linear.inFeatures]) }
                shapes += members.map { ($0.name + ".lora_B.weight", [$0.linear.outFeatures, r]) }
            }
        }
        return shapes
    }

    func group(layer: Int, _ input: LoRAInput) -> LoRAGroup? {
        groups[layer * LoRAInput.allCases.count + input.rawValue]
    }

    func module(layer: Int, _ module: LinearModule) -> LoRAModule? {
        modules[layer * LinearModule.allCases.count + module.rawValue]
    }

    public func check(for model: CausalLM) throws {
        guard modelConfiguration == model.configuration else {
            throw ModelError(model.path, "LoRA adapter '\(name)' was made for another model configuration")
        }
    }
}

/// One adapted module's view of its adapter's arena, and the LoRA products through BLAS.
struct LoRAModule: @unchecked Sendable {
    /// Position among the adapter's modules (seeds its dropout stream).
    let ordinal: Int
    let name: String
    let module: LinearModule
    let rank: Int, inFeatures: Int, outFeatures: Int
    let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>
    let aGradient: UnsafeMutablePointer<Float>, bGradient: UnsafeMutablePointer<Float>

    /// `down = x·Aᵀ` (T, r), then `y += s · down·Bᵀ` (T, out). `x: (T, in)`.
    func forward(_ x: UnsafePointer<Float>, tokens T: Int, scaling s: Float, into y: UnsafeMutablePointer<Float>,
                 down: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let (r, inF, outF) = (rank, inFeatures, outFeatures)
        let (a, b) = (self.a, self.b)
        let downOut = SendablePointer(down), yOut = SendablePointer(y)
        // Split over tokens: each row of `down` and `y` is computed by one call, so the thread
        // count does not change any sum.
        pool.parallelFor(T, grain: LoRAModule.tokenGrain(T, work: r * (inF + outF))) { rows in
            let n = rows.count, t0 = rows.lowerBound
            BLAS.gemm(transposeA: false, transposeB: true, m: n, n: r, k: inF, a: x + t0 * inF, lda: inF, b: a, ldb: inF,
                      c: downOut.pointer + t0 * r, ldc: r)
            BLAS.gemm(transposeA: false, transposeB: true, m: n, n: outF, k: r, a: downOut.pointer + t0 * r, lda: r, b: b, ldb: r,
                      c: yOut.pointer + t0 * outF, ldc: outF, alpha: s, beta: 1)
        }
    }

    /// Tokens per pool chunk: the whole batch on one thread unless BLAS is single-threaded and the
    /// products are big enough to share (≈ 50 µs of work per chunk).
    static func tokenGrain(_ tokens: Int, work perToken: Int) -> Int {
        guard BLAS.isSingleThreaded else { return .max }
        return max(1, 5_000_000 / max(1, 10 * perToken))
    }
}

