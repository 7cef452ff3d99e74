import FinchCore
import FinchFormats
import Foundation
import XCTest

/// GGUF export's quantizers against the `gguf` package's `quants.quantize` (ggml's reference
/// quantizers, bit for bit), on seeded rows and edge cases written by
/// reference/make_gguf_export_fixtures.py: an all-zero block, a negative largest magnitude, exact
/// ties, values whose f16 scale underflows, a constant block, large values.
final class GGMLQuantizeTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gguf_quantize.safetensors").path

    func testEncodingsAreByteIdenticalToGGUFPy() throws {
        let file = try SafeTensorsFile(path: Self.fixture)
        let input = try file.float32("input")
        let rows = 4, columns = input.count / rows
        XCTAssertEqual(columns, 256)
        for (name, type) in [("f16", GGMLType.f16), ("bf16", .bf16), ("q8_0", .q8_0), ("q4_0", .q4_0), ("q4_1", .q4_1)] {
            let expected = Array(try file.data(name))
            let rowBytes = columns / type.blockSize * type.typeSize
            XCTAssertEqual(expected.count, rows * rowBytes, name)
            var ours = [UInt8](repeating: 0xAA, count: rows * rowBytes)
            input.withUnsafeBufferPointer { x in
                ours.withUnsafeMutableBytes { type.quantize(x.baseAddress!, count: input.count, into: $0.baseAddress!) }
            }
            let differing = zip(ours, expected).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
            XCTAssertTrue(differing.isEmpty, "\(name): \(differing.count) bytes differ, first at \(differing.prefix(5)) (block \(differing.first.map { $0 / type.typeSize } ?? -1))")
        }
    }

    /// Quantize → dequantize stays within each format's rounding bound — half a step of the block's
    /// scale; a whole step for Q4_0, whose codes −8…7 clamp the end opposite the largest magnitude —
    /// an independent check of the codes' meaning.
    func testRoundTripErrorIsWithinHalfAStep() {
        var rng = SplitMix64(seed: 5)
        let x = (0..<(32 * 64)).map { _ in Float.random(in: -3...3, using: &rng) }
        for type in [GGMLType.q8_0, .q4_0, .q4_1] {
            var bytes = [UInt8](repeating: 0, count: x.count / 32 * type.typeSize)
            var back = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { xs in bytes.withUnsafeMutableBytes { type.quantize(xs.baseAddress!, count: x.count, into: $0.baseAddress!) } }
            bytes.withUnsafeBytes { raw in back.withUnsafeMutableBufferPointer { type.dequantize(raw.baseAddress!, count: x.count, into: $0.baseAddress!) } }
            for b in 0..<(x.count / 32) {
                let block = x[(32 * b)..<(32 * b + 32)]
                let amax = block.map(abs).max()!, range = block.max()! - block.min()!
                // Rounding to the step, plus the f16 rounding of the stored scale (relative 2^-11)
                // times the largest code, plus Q4_1's f16-rounded minimum.
                let (step, largestCode): (Float, Float) = switch type {
                case .q8_0: (amax / 127, 127)
                case .q4_0: (amax / 8, 8)
                default: (range / 15, 15)
                }
                let bound = step * (type == .q4_0 ? 1.0 : 0.5) * 1.001 + largestCode * step / 2048
                    + (type == .q4_1 ? abs(block.min()!) / 2048 : 0)
                for j in 0..<32 { XCTAssertLessThanOrEqual(abs(back[32 * b + j] - x[32 * b + j]), bound, "\(type.name) block \(b) element \(j)") }
            }
        }
    }
}
