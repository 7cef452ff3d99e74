import FinchFormats

extension LoRAAdapter {
    /// PEFT's `adapter_config.json` fields for this adapter. "all-linear" and the architecture
    /// default are stored resolved, as PEFT does: the sorted module suffixes that were adapted.
    public func peftConfig(baseModel: String?) -> PEFTAdapterFolder.Config {
        let targets: PEFTAdapterFolder.Config.TargetModules
        switch configuration.targetModules {
        case .names(let names): targets = .names(names)
        case .regex(let regex): targets = .regex(regex)
        case .allLinear, .architectureDefault:
            targets = .names(Set(moduleNames.map { name in name.split(separator: ".").last.map(String.init) ?? name }).sorted())
        }
        return PEFTAdapterFolder.Config(r: configuration.r, loraAlpha: configuration.loraAlpha, loraDropout: configuration.loraDropout,
                                        targetModules: targets, useRSLoRA: configuration.useRSLoRA, baseModelNameOrPath: baseModel)
    }

    /// A and B of every adapted module, in model order.
    public var peftTensors: [PEFTAdapterFolder.Tensor] {
        moduleNames.flatMap { module in
            ["lora_A", "lora_B"].map { matrix in
                let name = module + "." + matrix + ".weight"
                return PEFTAdapterFolder.Tensor(module: module, matrix: matrix, shape: parameters.tensor(named: name)!.shape,
                                                values: Array(parameters.values(of: name)!))
            }
        }
    }

    /// Saves the adapter as a PEFT folder (`PeftModel.save_pretrained`'s files).
    public func savePEFT(to path: String, baseModel: String?) throws {
        try PEFTAdapterFolder.write(path, config: peftConfig(baseModel: baseModel), tensors: peftTensors)
    }

    /// The LoRA configuration a PEFT folder describes.
    public static func configuration(fromPEFT config: PEFTAdapterFolder.Config) -> LoRAConfiguration {
        let targets: LoRAConfiguration.TargetModules = switch config.targetModules {
        case .names(let names): .names(names)
        case .regex(let regex): LoRAConfiguration.TargetModules(peftString: regex)
        }
        return LoRAConfiguration(r: config.r, loraAlpha: config.loraAlpha, loraDropout: config.loraDropout, targetModules: targets,
                                 useRSLoRA: config.useRSLoRA)
    }

    /// Loads a PEFT LoRA folder for `model`: the adapted modules must be exactly those the
    /// config's `target_modules` selects, each A `[r, in]` and B `[out, r]`.
    /// - Parameter values: where the adapter's values live (e.g. a trainer's arena), as for
    ///   `init(name:configuration:model:seed:values:)`.
    public convenience init(peftFolder path: String, name: String = "default", model: CausalLM, values: ExternalValues? = nil) throws {
        let (config, tensors) = try PEFTAdapterFolder.read(path)
        try self.init(name: name, configuration: Self.configuration(fromPEFT: config), model: model, seed: 0, values: values)
        try setValues(fromPEFT: tensors, path: path)
    }

    /// Overwrites A and B with a PEFT folder's tensors (which must cover exactly this adapter's modules).
    public func setValues(fromPEFT tensors: [PEFTAdapterFolder.Tensor], path: String) throws {
        let given = Set(tensors.map(\.module)), expected = Set(moduleNames)
        if let extra = given.subtracting(expected).sorted().first {
            throw ModelError(path, "adapter tensor for '\(extra)', which its target_modules do not select on this model")
        }
        if let missing = expected.subtracting(given).sorted().first {
            throw ModelError(path, "no adapter tensors for '\(missing)', which its target_modules select")
        }
        for tensor in tensors {
            let name = tensor.module + "." + tensor.matrix + ".weight"
            guard let expectedShape = parameters.tensor(named: name)?.shape else { throw ModelError(path, "unexpected tensor '\(name)'") }
            guard tensor.shape == expectedShape else {
                throw ModelError(path, "'\(tensor.fileName)' has shape \(tensor.shape), this model needs \(expectedShape)")
            }
            try parameters.setValues(of: name, to: tensor.values)
        }
    }
}
