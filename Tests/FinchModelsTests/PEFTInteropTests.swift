import FinchCore
import FinchFormats
import FinchModels
import Foundation
import XCTest

/// PEFT interoperability (issue 9 item 1; reference/make_peft_interop_fixtures.py): an adapter
/// `finch dpo` wrote (Fixtures/peft/finch_*), loaded by PEFT 0.21.2 onto the same fp32 base in
/// transformers, gives the logits Finch computes with it; and an adapter PEFT saved
/// (Fixtures/peft/peft_*) loads in Finch with PEFT's logits. `atol 1e-4` (the figure; the
/// measured gap is Float32 summation order, ≈ 1e-6). The base logits are checked to differ, so
/// an adapter that silently did nothing would fail.
final class PEFTInteropTests: XCTestCase {
    static let peft = ModelParityTests.fixtures + "/peft"
    static let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FinchTrainingTests/Fixtures/dpo").path

    func check(_ model: String, adapter: String) throws {
        let json = try JSONValue.parse(contentsOf: Self.peft + "/interop.json")
        let tokens = try XCTUnwrap(json["tokens"]?.arrayValue).compactMap(\.intValue)
        let expected = try SafeTensorsFile(path: Self.peft + "/interop_logits.safetensors")
        let lm = try CausalLM(source: ModelSource(path: Self.models + "/tiny_\(model)_dpo"))
        let loaded = try LoRAAdapter(peftFolder: Self.peft + "/\(adapter)_\(model)", model: lm)
        let ours = try lm.forward(tokens, cache: lm.makeCache(), allLogits: true, adapter: loaded, pool: .serial)
        let theirs = try expected.float32("\(adapter)_\(model)")
        let e = assertClose("\(adapter) adapter on \(model)", ours, theirs, atol: 1e-4, rtol: 0)
        let base = try expected.float32("base_\(model)")
        XCTAssertGreaterThan(zip(base, theirs).map { abs($0 - $1) }.max()!, 1e-2, "the adapter must change the logits")
        // Merging gives the same logits as the adapter applied on the fly.
        let merged = try lm.mergingLoRA(loaded)
        assertClose("merged \(adapter) adapter on \(model)", try merged.forward(tokens, cache: merged.makeCache(), allLogits: true, pool: .serial),
                    ours, atol: 1e-4, rtol: 0)
        print("\(adapter) adapter on \(model): worst |Δ| \(e.absolute)")
    }

    func testFinchAdaptersLoadInPEFT() throws {
        try check("llama", adapter: "finch")
        try check("phi", adapter: "finch")
    }

    func testPEFTAdaptersLoadInFinch() throws {
        try check("llama", adapter: "peft")
        try check("phi", adapter: "peft")
    }
}
