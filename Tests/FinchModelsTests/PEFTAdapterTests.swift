import FinchCore
import FinchFormats
import FinchModels
import Foundation
import XCTest

/// PEFT adapter folders: the files PEFT 0.21.2 reads, round trips, and errors that name the field.
final class PEFTAdapterTests: XCTestCase {
    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "finch-peft-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// The training fixture's adapter (PEFT's own A/B values) saved and read back, bit for bit,
    /// with PEFT's file layout: tensor names `base_model.model.<module>.lora_{A,B}.weight`.
    func testRoundTrip() throws {
        let fixture = try TrainingFixture("tiny_phi")
        let adapter = try fixture.adapter("lora")
        let dir = try temporaryDirectory()
        try adapter.savePEFT(to: dir, baseModel: "tiny_phi")
        let file = try SafeTensorsFile(path: dir + "/adapter_model.safetensors")
        XCTAssertEqual(Set(file.tensors.map(\.name)), Set(adapter.moduleNames.flatMap {
            ["base_model.model.\($0).lora_A.weight", "base_model.model.\($0).lora_B.weight"]
        }))
        XCTAssertEqual(file.metadata["format"], "pt")
        let config = try JSONValue.parse(contentsOf: dir + "/adapter_config.json")
        XCTAssertEqual(config["peft_type"]?.stringValue, "LORA")
        XCTAssertEqual(config["r"]?.intValue, 4)
        XCTAssertEqual(config["use_rslora"]?.boolValue, true)
        XCTAssertEqual(config["target_modules"]?.arrayValue?.compactMap(\.stringValue), ["dense", "fc1", "fc2", "k_proj", "q_proj", "v_proj"])
        let loaded = try LoRAAdapter(peftFolder: dir, model: fixture.model)
        XCTAssertEqual(loaded.moduleNames, adapter.moduleNames)
        XCTAssertEqual(loaded.scaling, adapter.scaling)
        for tensor in adapter.parameters.tensors {
            XCTAssertEqual(Array(loaded.parameters.values(of: tensor.name)!), Array(adapter.parameters.values(of: tensor.name)!), tensor.name)
        }
        // The loaded adapter computes what the original does.
        let tokens = [1, 7, 42, 3]
        let a = try fixture.model.forward(tokens, cache: fixture.model.makeCache(), adapter: adapter, pool: .serial)
        let b = try fixture.model.forward(tokens, cache: fixture.model.makeCache(), adapter: loaded, pool: .serial)
        XCTAssertEqual(a, b)
    }

    func testErrorsNameTheField() throws {
        let fixture = try TrainingFixture("tiny_llama_gqa")
        let adapter = try fixture.adapter("lora")
        let dir = try temporaryDirectory()
        try adapter.savePEFT(to: dir, baseModel: nil)
        let configPath = dir + "/adapter_config.json"
        let original = try String(contentsOfFile: configPath, encoding: .utf8)
        for (from, to, expected) in [("\"use_dora\":false", "\"use_dora\":true", "use_dora"),
                                     ("\"bias\":\"none\"", "\"bias\":\"all\"", "bias"),
                                     ("\"r\":4", "\"r\":0", "r"),
                                     ("\"modules_to_save\":null", "\"modules_to_save\":[\"lm_head\"]", "modules_to_save"),
                                     ("\"peft_type\":\"LORA\"", "\"peft_type\":\"IA3\"", "peft_type")] {
            XCTAssertTrue(original.contains(from), from)
            try original.replacingOccurrences(of: from, with: to).write(toFile: configPath, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try LoRAAdapter(peftFolder: dir, model: fixture.model)) {
                XCTAssertTrue("\($0)".contains("adapter_config.json") && "\($0)".contains(expected + ":"), "\($0)")
            }
        }
        // r 8 in the config but rank-4 tensors.
        try original.replacingOccurrences(of: "\"r\":4", with: "\"r\":8").write(toFile: configPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try LoRAAdapter(peftFolder: dir, model: fixture.model)) { XCTAssertTrue("\($0)".contains("rank 4"), "\($0)") }
        // An adapter made for the other architecture.
        try original.write(toFile: configPath, atomically: true, encoding: .utf8)
        let phi = try CausalLM(source: ModelSource(path: ModelParityTests.fixtures + "/tiny_phi"))
        XCTAssertThrowsError(try LoRAAdapter(peftFolder: dir, model: phi)) { XCTAssertTrue("\($0)".contains("o_proj") || "\($0)".contains("gate_proj") || "\($0)".contains("matches no module"), "\($0)") }
        XCTAssertThrowsError(try LoRAAdapter(peftFolder: dir + "/missing", model: phi)) { XCTAssertTrue("\($0)".contains("adapter_config.json is missing"), "\($0)") }
    }
}
