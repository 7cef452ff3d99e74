import Foundation

/// A PEFT LoRA adapter folder as `PeftModel.save_pretrained` writes it (peft 0.21.2):
/// `adapter_config.json` and `adapter_model.safetensors` whose tensors are named
/// `base_model.model.<module>.lora_A.weight` (`[r, in]`) and `….lora_B.weight` (`[out, r]`),
/// Float32 here. Reading also accepts PEFT's in-memory names with the adapter name
/// (`….lora_A.default.weight`) and F16/BF16 tensors.
public enum PEFTAdapterFolder {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"
    static let prefix = "base_model.model."

    /// The fields of `adapter_config.json` that Finch uses.
    public struct Config: Sendable, Equatable {
        public var r: Int
        public var loraAlpha: Double
        public var loraDropout: Double
        /// A list of module names/suffixes, or one regular expression (PEFT stores "all-linear"
        /// resolved to the list of adapted suffixes).
        public var targetModules: TargetModules
        public var useRSLoRA: Bool
        public var baseModelNameOrPath: String?

        public enum TargetModules: Sendable, Equatable {
            case names([String])
            case regex(String)
        }

        public init(r: Int, loraAlpha: Double, loraDropout: Double, targetModules: TargetModules, useRSLoRA: Bool,
                    baseModelNameOrPath: String?) {
            self.r = r
            self.loraAlpha = loraAlpha
            self.loraDropout = loraDropout
            self.targetModules = targetModules
            self.useRSLoRA = useRSLoRA
            self.baseModelNameOrPath = baseModelNameOrPath
        }
    }

    /// One LoRA tensor, by module name (`model.layers.0.self_attn.q_proj`) and matrix.
    public struct Tensor: Sendable, Equatable {
        public var module: String
        /// "lora_A" or "lora_B".
        public var matrix: String
        public var shape: [Int]
        public var values: [Float]

        public init(module: String, matrix: String, shape: [Int], values: [Float]) {
            self.module = module
            self.matrix = matrix
            self.shape = shape
            self.values = values
        }

        /// The tensor's name in the file.
        public var fileName: String { PEFTAdapterFolder.prefix + module + "." + matrix + ".weight" }
    }

    /// Reads a PEFT LoRA folder. Everything Finch cannot reproduce is an error naming the field:
    /// another `peft_type`, DoRA, trained biases, `modules_to_save`, per-module rank or alpha
    /// patterns, `fan_in_fan_out`, layer selections.
    public static func read(_ path: String) throws -> (config: Config, tensors: [Tensor]) {
        let configPath = (path as NSString).appendingPathComponent(configFile)
        let weightsPath = (path as NSString).appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw FormatError(path, "not a PEFT adapter folder: \(configFile) is missing")
        }
        let json = try JSONValue.parse(contentsOf: configPath)
        func field(_ key: String) -> JSONValue? { json[key].flatMap { $0.isNull ? nil : $0 } }
        func fail(_ key: String, _ reason: String) -> FormatError { FormatError(configPath, "\(key): \(reason)") }
        if let type = field("peft_type")?.stringValue, type != "LORA" { throw fail("peft_type", "'\(type)' is not a LoRA adapter") }
        guard let r = field("r")?.intValue, r > 0 else { throw fail("r", "missing or not a positive integer") }
        guard let alpha = field("lora_alpha")?.doubleValue else { throw fail("lora_alpha", "missing or not a number") }
        let dropout = field("lora_dropout")?.doubleValue ?? 0
        let targets: Config.TargetModules
        if let list = field("target_modules")?.arrayValue {
            let names = list.compactMap(\.stringValue)
            guard names.count == list.count, !names.isEmpty else { throw fail("target_modules", "must be a non-empty list of strings or a string") }
            targets = .names(names)
        } else if let regex = field("target_modules")?.stringValue {
            targets = .regex(regex)
        } else {
            throw fail("target_modules", "missing")
        }
        for (key, allowed) in [("use_dora", false), ("fan_in_fan_out", false), ("lora_bias", false)] where field(key)?.boolValue == !allowed {
            throw fail(key, "true is not supported")
        }
        if let bias = field("bias")?.stringValue, bias != "none" { throw fail("bias", "'\(bias)' is not supported (only \"none\")") }
        for key in ["modules_to_save", "layers_to_transform", "target_parameters", "trainable_token_indices"] {
            if let value = field(key), !(value.arrayValue?.isEmpty ?? false) { throw fail(key, "is set; Finch does not support it") }
        }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let members = field(key)?.objectValue, !members.isEmpty { throw fail(key, "per-module ranks/alphas are not supported") }
        }
        let config = Config(r: r, loraAlpha: alpha, loraDropout: dropout, targetModules: targets,
                            useRSLoRA: field("use_rslora")?.boolValue ?? false,
                            baseModelNameOrPath: field("base_model_name_or_path")?.stringValue)
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            throw FormatError(path, "\(weightsFile) is missing (a .bin adapter must be converted to safetensors first)")
        }
        let file = try SafeTensorsFile(path: weightsPath)
        var tensors: [Tensor] = []
        for info in file.tensors {
            var name = info.name
            guard name.hasPrefix(prefix) else { throw FormatError(weightsPath, "tensor '\(name)' does not start with '\(prefix)'") }
            name.removeFirst(prefix.count)
            name = name.replacingOccurrences(of: ".lora_A.default.weight", with: ".lora_A.weight")
                .replacingOccurrences(of: ".lora_B.default.weight", with: ".lora_B.weight")
            let matrix: String
            if name.hasSuffix(".lora_A.weight") { matrix = "lora_A" } else if name.hasSuffix(".lora_B.weight") { matrix = "lora_B" } else {
                throw FormatError(weightsPath, "tensor '\(info.name)' is not a LoRA A or B weight")
            }
            let module = String(name.dropLast(matrix.count + ".weight".count + 1))
            guard info.shape.count == 2 else { throw FormatError(weightsPath, "tensor '\(info.name)' has shape \(info.shape), expected a matrix") }
            let rank = matrix == "lora_A" ? info.shape[0] : info.shape[1]
            guard rank == r else { throw FormatError(weightsPath, "tensor '\(info.name)' has rank \(rank), the config says r = \(r)") }
            tensors.append(Tensor(module: module, matrix: matrix, shape: info.shape, values: try file.float32(info.name)))
        }
        return (config, tensors)
    }

    /// Writes `adapter_config.json` (PEFT 0.21.2's fields with PEFT's defaults) and
    /// `adapter_model.safetensors` into `path` (created if needed); each file is written to a
    /// temporary name and renamed.
    public static func write(_ path: String, config: Config, tensors: [Tensor]) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let targets: JSONValue = switch config.targetModules {
        case .names(let names): .array(names.map { .string($0) })
        case .regex(let regex): .string(regex)
        }
        func number(_ x: Double) -> JSONValue { .number(x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)") }
        let json: JSONValue = .object([
            ("alpha_pattern", .object([])), ("auto_mapping", .null),
            ("base_model_name_or_path", config.baseModelNameOrPath.map { .string($0) } ?? .null),
            ("bias", .string("none")), ("exclude_modules", .null), ("fan_in_fan_out", .bool(false)),
            ("inference_mode", .bool(true)), ("init_lora_weights", .bool(true)), ("layer_replication", .null),
            ("layers_pattern", .null), ("layers_to_transform", .null), ("lora_alpha", number(config.loraAlpha)),
            ("lora_bias", .bool(false)), ("lora_dropout", .number("\(config.loraDropout)")), ("modules_to_save", .null),
            ("peft_type", .string("LORA")), ("peft_version", .string("0.21.2")), ("r", .number(String(config.r))),
            ("rank_pattern", .object([])), ("revision", .null), ("target_modules", targets), ("target_parameters", .null),
            ("task_type", .string("CAUSAL_LM")), ("trainable_token_indices", .null), ("use_dora", .bool(false)),
            ("use_rslora", .bool(config.useRSLoRA)),
        ])
        try AtomicFile.write(Array((json.compactText + "\n").utf8), to: (path as NSString).appendingPathComponent(configFile))
        try SafeTensorsWriter.write(tensors.map { SafeTensorsWriter.Entry(name: $0.fileName, shape: $0.shape, float32: $0.values) },
                                    metadata: ["format": "pt"], to: (path as NSString).appendingPathComponent(weightsFile))
    }
}
