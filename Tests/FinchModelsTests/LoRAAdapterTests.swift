import FinchCore
import FinchFormats
import FinchModels
import XCTest

/// LoRA adapters as PEFT defines them: initialization, exactness of a fresh adapter, target_modules
/// resolution (against PEFT's own resolution, recorded in the training fixtures), errors, and
/// several named adapters on one model.
final class LoRAAdapterTests: XCTestCase {
    func tinyModel(_ name: String) throws -> CausalLM {
        try CausalLM(source: ModelSource(path: ModelParityTests.fixtures + "/" + name))
    }

    /// PEFT's init_lora_weights=True: A ~ U(−1/√in, 1/√in) (Kaiming-uniform, a = √5), B = 0.
    /// The empirical mean and variance of each layer type's A values (≥ 1024 draws) must be those
    /// of the uniform distribution (0, bound²/3) within 5 standard errors, and the extreme values
    /// must come close to the bound (a narrower distribution would fail).
    func testInitializationIsUniformWithinOneOverSqrtInAndBIsZero() throws {
        let model = try tinyModel("tiny_phi")
        let adapter = try LoRAAdapter(configuration: LoRAConfiguration(r: 8, targetModules: .allLinear), model: model, seed: 42)
        XCTAssertEqual(adapter.moduleNames.count, 12)
        var byWidth: [Int: [Float]] = [:]
        for tensor in adapter.parameters.tensors {
            let values = Array(adapter.parameters.values(of: tensor.name)!)
            if tensor.name.hasSuffix("lora_B.weight") {
                XCTAssertTrue(values.allSatisfy { $0 == 0 }, "\(tensor.name) must start at zero")
                XCTAssertEqual(tensor.shape[1], 8)
            } else {
                XCTAssertEqual(tensor.shape[0], 8)
                byWidth[tensor.shape[1], default: []] += values
            }
        }
        XCTAssertEqual(Set(byWidth.keys), [64, 256])
        for (width, values) in byWidth {
            let bound = 1 / Float(width).squareRoot()
            XCTAssertTrue(values.allSatisfy { abs($0) <= bound }, "in = \(width): a value beyond ±1/√in")
            XCTAssertGreaterThan(values.map(abs).max()!, 0.99 * bound, "in = \(width): the draws must reach the bound")
            let n = Double(values.count)
            let mean = values.reduce(0.0) { $0 + Double($1) } / n
            let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
            let b = Double(bound)
            XCTAssertLessThan(abs(mean), 5 * b / (3 * n).squareRoot(), "in = \(width): mean \(mean)")
            // Var of x² for U(−b, b) is 4b⁴/45.
            XCTAssertLessThan(abs(variance - b * b / 3), 5 * (4 * b * b * b * b / 45 / n).squareRoot(), "in = \(width): variance \(variance)")
        }
        // Seeded: the same seed gives the same A, another seed another.
        let again = try LoRAAdapter(configuration: LoRAConfiguration(r: 8, targetModules: .allLinear), model: model, seed: 42)
        let other = try LoRAAdapter(configuration: LoRAConfiguration(r: 8, targetModules: .allLinear), model: model, seed: 43)
        let name = "model.layers.1.mlp.fc2.lora_A.weight"
        XCTAssertEqual(Array(again.parameters.values(of: name)!), Array(adapter.parameters.values(of: name)!))
        XCTAssertNotEqual(Array(other.parameters.values(of: name)!), Array(adapter.parameters.values(of: name)!))
    }

    /// B = 0 makes the adapted model compute exactly the base model: the training pass's log p and
    /// the inference logits are bit-identical with the fresh adapter and without one. With B ≠ 0
    /// they differ (so the comparison can fail).
    func testFreshAdapterOutputEqualsBaseOutputExactly() throws {
        for name in ["tiny_llama_gqa", "tiny_phi"] {
            let model = try tinyModel(name)
            let adapter = try LoRAAdapter(configuration: LoRAConfiguration(r: 4, loraAlpha: 16, targetModules: .allLinear),
                                          model: model, seed: 7)
            let batch = try PackedBatch(sequences: [[1, 5, 17, 42, 99], [0, 3, 250, 7, 7, 7, 64]])
            let pass = TrainingPass(model: model)
            let base = try pass.logProbabilities(batch, adapter: nil, pool: .serial)
            let adapted = try pass.forward(batch, adapter: adapter, pool: .serial)
            XCTAssertEqual(adapted.logProbabilities, base.logProbabilities, "\(name): training pass")
            XCTAssertEqual(adapted.logSumExp, base.logSumExp, "\(name): training pass")
            let ids = [1, 5, 17, 42, 99, 128, 255]
            let plain = try model.forward(ids, cache: model.makeCache(capacity: 16), allLogits: true, pool: .serial)
            let withAdapter = try model.forward(ids, cache: model.makeCache(capacity: 16), allLogits: true, adapter: adapter, pool: .serial)
            XCTAssertEqual(withAdapter, plain, "\(name): inference forward")

            let b = adapter.parameters.values(of: "model.layers.0.self_attn.v_proj.lora_B.weight")!
            b[0] = 0.01
            let changed = try pass.forward(batch, adapter: adapter, pool: .serial)
            XCTAssertNotEqual(changed.logProbabilities, base.logProbabilities, "\(name): a nonzero B must show")
            let changedLogits = try model.forward(ids, cache: model.makeCache(capacity: 16), allLogits: true, adapter: adapter, pool: .serial)
            XCTAssertNotEqual(changedLogits, plain)
        }
    }

    /// The inference forward (KV cache) and the training pass agree with an adapter that has B ≠ 0.
    func testInferenceAndTrainingForwardsAgreeWithAnAdapter() throws {
        let fixture = try TrainingFixture("tiny_phi")
        let adapter = try fixture.adapter("lora")
        let ids = try XCTUnwrap(fixture["sequences"]?.arrayValue?[1].arrayValue).compactMap(\.intValue)
        let logits = try fixture.model.forward(ids, cache: fixture.model.makeCache(capacity: 32), allLogits: true, adapter: adapter, pool: .serial)
        let batch = try PackedBatch(sequences: [ids])
        let out = try TrainingPass(model: fixture.model).forward(batch, adapter: adapter, options: .init(logitMeans: true), pool: .serial)
        let V = fixture.model.vocabularySize
        let means = try XCTUnwrap(out.logitMeans)
        for t in 0..<(ids.count - 1) {
            let row = Array(logits[(t * V)..<((t + 1) * V)])
            let m = row.max()!
            let lse = m + log(row.reduce(Float(0)) { $0 + exp($1 - m) })
            XCTAssertEqual(out.logProbabilities[t], row[ids[t + 1]] - lse, accuracy: 1e-5)
            XCTAssertEqual(out.logSumExp[t], lse, accuracy: 1e-5)
            XCTAssertEqual(means[t], row.reduce(0, +) / Float(V), accuracy: 1e-5)
        }
        XCTAssertEqual(out.logProbabilities.last, 0, "the last row of a sequence has no target")
        XCTAssertEqual(means.last, 0)
    }

    /// PEFT's module selection for each `target_modules` form, as recorded from PEFT itself.
    func testTargetModulesResolveAsPEFT() throws {
        for name in ["tiny_llama_gqa", "tiny_phi"] {
            let fixture = try TrainingFixture(name)
            let linear = try XCTUnwrap(fixture["linear_modules"]?.arrayValue).compactMap(\.stringValue)
            XCTAssertEqual(fixture.model.linearModuleNames, linear.filter { $0 != "lm_head" })
            for (label, spec) in try XCTUnwrap(fixture["target_modules"]?.objectValue) {
                let targets: LoRAConfiguration.TargetModules
                switch spec["target_modules"] {
                case .string(let s)?: targets = .init(peftString: s)
                case .array(let entries)?: targets = .names(entries.compactMap(\.stringValue))
                default: targets = .architectureDefault
                }
                let configuration = LoRAConfiguration(r: 2, targetModules: targets)
                if let error = spec["error"]?.stringValue {
                    XCTAssertThrowsError(try LoRAAdapter(configuration: configuration, model: fixture.model, seed: 0),
                                         "\(name) \(label): PEFT says \(error)")
                } else {
                    let expected = try XCTUnwrap(spec["modules"]?.arrayValue).compactMap(\.stringValue)
                    let adapter = try LoRAAdapter(configuration: configuration, model: fixture.model, seed: 0)
                    XCTAssertEqual(adapter.moduleNames.sorted(), expected.sorted(), "\(name) \(label)")
                    XCTAssertEqual(adapter.parameters.tensors.count, 2 * expected.count)
                }
            }
        }
    }

    /// A name from the other architecture is an error that lists the module names that exist.
    func testUnmatchedTargetListsTheExistingModules() throws {
        let phi = try tinyModel("tiny_phi"), llama = try tinyModel("tiny_llama_gqa")
        func message(_ targets: LoRAConfiguration.TargetModules, _ model: CausalLM) -> String {
            do {
                _ = try LoRAAdapter(configuration: LoRAConfiguration(targetModules: targets), model: model, seed: 0)
                return "no error"
            } catch { return "\(error)" }
        }
        let onPhi = message(.names(["q_proj", "o_proj"]), phi)
        XCTAssertTrue(onPhi.contains("'o_proj'"), onPhi)
        for existing in ["self_attn.q_proj", "self_attn.dense", "mlp.fc1", "mlp.fc2", "model.layers.{0…1}"] {
            XCTAssertTrue(onPhi.contains(existing), "\(existing) missing from: \(onPhi)")
        }
        XCTAssertFalse(onPhi.contains("o_proj,"), onPhi)
        let onLlama = message(.names(["dense"]), llama)
        for existing in ["self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] {
            XCTAssertTrue(onLlama.contains(existing), "\(existing) missing from: \(onLlama)")
        }
        XCTAssertTrue(message(.names(["lm_head"]), llama).contains("lm_head"))
        XCTAssertTrue(message(.regex(".*\\.nothing"), llama).contains("matches no module"))
        XCTAssertTrue(message(.regex("model.layers.(0"), llama).contains("not a valid regular expression"))
        XCTAssertTrue(message(.names([]), llama).contains("empty"))
        XCTAssertThrowsError(try LoRAAdapter(configuration: LoRAConfiguration(r: 0), model: llama, seed: 0))
        XCTAssertThrowsError(try LoRAAdapter(configuration: LoRAConfiguration(loraDropout: 1), model: llama, seed: 0))
    }

    /// Names and shapes are PEFT's (`lora_A: [r, in]`, `lora_B: [out, r]`); scaling alpha/r or alpha/√r.
    func testParameterNamesShapesAndScaling() throws {
        let llama = try tinyModel("tiny_llama_gqa")
        let adapter = try LoRAAdapter(configuration: LoRAConfiguration(r: 4, loraAlpha: 32, targetModules: .names(["k_proj", "down_proj"])),
                                      model: llama, seed: 0)
        XCTAssertEqual(adapter.moduleNames, ["model.layers.0.self_attn.k_proj", "model.layers.0.mlp.down_proj",
                                             "model.layers.1.self_attn.k_proj", "model.layers.1.mlp.down_proj"])
        XCTAssertEqual(adapter.parameters.tensor(named: "model.layers.0.self_attn.k_proj.lora_A.weight")?.shape, [4, 64])
        XCTAssertEqual(adapter.parameters.tensor(named: "model.layers.0.self_attn.k_proj.lora_B.weight")?.shape, [32, 4])
        XCTAssertEqual(adapter.parameters.tensor(named: "model.layers.1.mlp.down_proj.lora_A.weight")?.shape, [4, 128])
        XCTAssertEqual(adapter.parameters.parameterCount, 2 * (4 * 64 + 32 * 4) + 2 * (4 * 128 + 64 * 4))
        XCTAssertEqual(adapter.scaling, 8)
        XCTAssertEqual(LoRAConfiguration(r: 16, loraAlpha: 32, useRSLoRA: true).scaling, 8)
        XCTAssertEqual(LoRAConfiguration(r: 16, loraAlpha: 32).scaling, 2)
        XCTAssertEqual(LoRAConfiguration.TargetModules(peftString: "ALL-LINEAR"), .allLinear)
    }

    /// Several named adapters live on one model; each pass chooses one or none, and an adapter is
    /// refused by a model it was not made for.
    func testSeveralAdaptersOnOneModel() throws {
        let fixture = try TrainingFixture("tiny_llama_gqa")
        let model = fixture.model
        let policy = try fixture.adapter("lora")
        let reference = try fixture.adapter("dropout") // other A and B, used here without dropout
        let pass = TrainingPass(model: model)
        let p = try pass.logProbabilities(fixture.batch, adapter: policy, pool: .serial).logProbabilities
        let r = try pass.logProbabilities(fixture.batch, adapter: reference, pool: .serial).logProbabilities
        let base = try pass.logProbabilities(fixture.batch, adapter: nil, pool: .serial).logProbabilities
        XCTAssertNotEqual(p, r)
        XCTAssertNotEqual(p, base)
        XCTAssertEqual(try pass.logProbabilities(fixture.batch, adapter: policy, pool: .serial).logProbabilities, p)
        assertClose("base", base, try fixture.floats("base.logp"), atol: 1e-5, rtol: 1e-5)
        assertClose("policy", p, try fixture.floats("lora.logp"), atol: 1e-5, rtol: 1e-5)
        let phi = try tinyModel("tiny_phi")
        XCTAssertThrowsError(try TrainingPass(model: phi).forward(fixture.batch, adapter: policy, pool: .serial))
    }

    /// Modules that read the same input share one product (their A matrices adjacent in the
    /// arena): a partial group (Phi's q and fc1, which read the same norm output) gives the same
    /// gradients as the same two modules inside a full all-linear adapter whose other B are 0 (so
    /// they change nothing), up to Float32 reassociation of the differently shaped products.
    func testGroupedProductsMatchSeparateModules() throws {
        let fixture = try TrainingFixture("tiny_phi")
        let model = fixture.model
        let partial = try LoRAAdapter(configuration: LoRAConfiguration(r: 4, loraAlpha: 8, targetModules: .names(["q_proj", "fc1"])),
                                      model: model, seed: 5)
        XCTAssertEqual(Array(partial.parameters.tensors.prefix(4).map(\.name)), [
            "model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.0.mlp.fc1.lora_A.weight",
            "model.layers.0.self_attn.q_proj.lora_B.weight", "model.layers.0.mlp.fc1.lora_B.weight"])
        let full = try LoRAAdapter(configuration: LoRAConfiguration(r: 4, loraAlpha: 8, targetModules: .allLinear), model: model, seed: 6)
        XCTAssertEqual(Array(full.parameters.tensors.prefix(8).map(\.name)), [
            "q_proj", "k_proj", "v_proj", "fc1"].map { "model.layers.0.\($0 == "fc1" ? "mlp" : "self_attn").\($0).lora_A.weight" }
            + ["q_proj", "k_proj", "v_proj", "fc1"].map { "model.layers.0.\($0 == "fc1" ? "mlp" : "self_attn").\($0).lora_B.weight" })
        var rng = SeededGenerator(seed: 11)
        for tensor in partial.parameters.tensors {
            let values = (0..<tensor.count).map { _ in Float.random(in: -0.2...0.2, using: &rng) }
            try partial.parameters.setValues(of: tensor.name, to: values)
            try full.parameters.setValues(of: tensor.name, to: values)
        }
        for adapter in [partial, full] {
            let pass = TrainingPass(model: model)
            _ = try pass.forward(fixture.batch, adapter: adapter, pool: ThreadPool(threads: 2))
            try pass.backward(logProbabilityGradient: fixture.weights, pool: ThreadPool(threads: 2))
        }
        for tensor in partial.parameters.tensors {
            let a = Array(partial.parameters.gradients(of: tensor.name)!), b = Array(full.parameters.gradients(of: tensor.name)!)
            XCTAssertGreaterThan(a.map(abs).max()!, 1e-2)
            assertClose("grouped \(tensor.name)", b, a, atol: 1e-6, rtol: 1e-5)
        }
        let other = try XCTUnwrap(full.parameters.gradients(of: "model.layers.1.self_attn.k_proj.lora_A.weight"))
        XCTAssertTrue(other.allSatisfy { $0 == 0 }, "A of a module whose B is 0 gets no gradient")
    }
}
