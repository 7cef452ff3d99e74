import Foundation

/// A LoRA adapter's hyperparameters, as PEFT's `LoraConfig` names them (reference/trl-dpo.md §8):
/// the adapted layer computes `y = W x + b + s · B(A(drop(x)))` with `A: [r, in]`, `B: [out, r]`,
/// `s = lora_alpha / r` (or `lora_alpha / √r` with rsLoRA), and dropout on the adapter's input only.
/// Bias mode is PEFT's "none" (no bias trains); DoRA and the other variants are not supported.
public struct LoRAConfiguration: Sendable, Equatable {
    /// Which linear modules get an adapter (PEFT's `target_modules`).
    public enum TargetModules: Sendable, Equatable {
        /// PEFT's default for the architecture when `target_modules` is None
        /// (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`): llama and qwen2 `q_proj`,
        /// `v_proj`; phi `q_proj`, `v_proj`, `fc1`, `fc2`.
        case architectureDefault
        /// Each entry is a module's full name (`model.layers.0.self_attn.q_proj`) or a suffix after
        /// a dot (`q_proj`, `self_attn.dense`: "proj" does not match `q_proj`), as PEFT matches a
        /// list. Unlike PEFT, which only fails when nothing at all matches, every entry must match
        /// at least one module, so a name from another architecture (`o_proj` on Phi) is caught.
        case names([String])
        /// A regular expression that must match a module's whole name (PEFT: a string other than
        /// "all-linear" is `re.fullmatch`ed). Swift `Regex` syntax, which agrees with Python's `re`
        /// on the usual patterns (`.*`, classes, groups, alternation, escapes).
        case regex(String)
        /// Every linear module of the decoder blocks; PEFT's "all-linear", which leaves out the
        /// output layer (lm_head).
        case allLinear

        /// PEFT's string form: "all-linear" (any case) or a regular expression.
        public init(peftString value: String) {
            self = value.lowercased() == "all-linear" ? .allLinear : .regex(value)
        }
    }

    /// Rank r of A and B.
    public var r: Int
    public var loraAlpha: Double
    /// Probability of zeroing an element of the adapter's input in training passes.
    public var loraDropout: Double
    public var targetModules: TargetModules
    /// rsLoRA (Kalajdzievski 2023): scaling `alpha/√r` instead of `alpha/r`.
    public var useRSLoRA: Bool

    /// PEFT's defaults: r 8, alpha 8, no dropout, the architecture's default modules, no rsLoRA.
    public init(r: Int = 8, loraAlpha: Double = 8, loraDropout: Double = 0, targetModules: TargetModules = .architectureDefault,
                useRSLoRA: Bool = false) {
        self.r = r
        self.loraAlpha = loraAlpha
        self.loraDropout = loraDropout
        self.targetModules = targetModules
        self.useRSLoRA = useRSLoRA
    }

    /// `s` in `y = W x + s·B A x`: computed in Double and rounded once, as PEFT multiplies a
    /// Float32 tensor by the Python float `lora_alpha / r` (or `lora_alpha / math.sqrt(r)`).
    public var scaling: Float {
        Float(useRSLoRA ? loraAlpha / Double(r).squareRoot() : loraAlpha / Double(r))
    }

    func validate(path: String) throws {
        guard r > 0 else { throw ModelError(path, "LoRA r must be positive (got \(r))") }
        guard loraAlpha.isFinite else { throw ModelError(path, "lora_alpha must be finite (got \(loraAlpha))") }
        guard loraDropout >= 0, loraDropout < 1 else {
            throw ModelError(path, "lora_dropout must be in [0, 1) (got \(loraDropout))")
        }
    }
}

extension LoRAConfiguration.TargetModules {
    /// The modules of `available` (PEFT names, in model order) that this selects, or an error that
    /// names the unmatched entry and the modules that exist.
    func resolve(in available: [String], architecture: String, defaults: [String], path: String) throws -> [String] {
        func listing() -> String {
            // `model.layers.{0…N}.{…}` rather than every name of a 32-layer model.
            var suffixes: [String] = [], layers = Set<Int>()
            for name in available {
                let parts = name.split(separator: ".", maxSplits: 3)
                guard parts.count == 4, let layer = Int(parts[2]) else { continue }
                layers.insert(layer)
                if !suffixes.contains(String(parts[3])) { suffixes.append(String(parts[3])) }
            }
            let range = layers.isEmpty ? "" : layers.count == 1 ? "\(layers.min()!)" : "\(layers.min()!)…\(layers.max()!)"
            return "model.layers.{\(range)}.{\(suffixes.joined(separator: ", "))} (lm_head and embed_tokens cannot take an adapter)"
        }
        func matchNames(_ entries: [String]) throws -> [String] {
            guard !entries.isEmpty else { throw ModelError(path, "target_modules is empty; the \(architecture) linear modules are \(listing())") }
            var selected = Set<String>()
            for entry in entries {
                let hits = available.filter { $0 == entry || $0.hasSuffix("." + entry) }
                guard !hits.isEmpty else {
                    throw ModelError(path, "target_modules entry '\(entry)' matches no module of this \(architecture) model; its linear modules are \(listing())")
                }
                selected.formUnion(hits)
            }
            return available.filter(selected.contains)
        }
        switch self {
        case .allLinear:
            return available
        case .architectureDefault:
            return try matchNames(defaults)
        case .names(let entries):
            return try matchNames(entries)
        case .regex(let pattern):
            let regex: Regex<AnyRegexOutput>
            do { regex = try Regex(pattern) } catch {
                throw ModelError(path, "target_modules regex '\(pattern)' is not a valid regular expression: \(error)")
            }
            let hits = available.filter { (try? regex.wholeMatch(in: $0)) != nil }
            guard !hits.isEmpty else {
                throw ModelError(path, "target_modules regex '\(pattern)' matches no module name of this \(architecture) model; its linear modules are \(listing())")
            }
            return hits
        }
    }
}
