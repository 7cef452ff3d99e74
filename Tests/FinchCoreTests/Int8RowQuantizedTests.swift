import FinchCore
import FinchFormats
import Foundation
import XCTest

/// `Int8RowQuantized` against bitsandbytes 0.50.2 (reference/make_int8_fixtures.py): codes (`CB`)
/// and row absmax (`SCB`) bit for bit, through `Int8Params` (float16 first, what `load_in_8bit`
/// stores) and `int8_vectorwise_quant` on float32 values, on random matrices of odd shapes, zero
/// rows, rounding ties, float16 subnormals and overflow-near values, and values where torch's
/// `reciprocal() * 127` scale gives another code than `127 / SCB`; the dequantized weight bit for
/// bit against the one bitsandbytes multiplies by on a CPU; and a `Linear8bitLt` forward and input
/// gradient against `LinearWeight` on the same codes.
final class Int8RowQuantizedTests: XCTestCase {
    static func expected() throws -> JSONValue { try JSONValue.parse(contentsOf: BNBFixtures.directory + "/bnb_int8_expected.json") }
    static func cases() throws -> SafeTensorsFile { try SafeTensorsFile(path: BNBFixtures.directory + "/bnb_int8_cases.safetensors") }

    func testQuantizationAndDequantizationMatchBitsAndBytesBitForBit() throws {
        let file = try Self.cases()
        var checked = 0
        for entry in try XCTUnwrap(Self.expected()["cases"]?.arrayValue) {
            let name = try XCTUnwrap(entry["name"]?.stringValue)
            let shape = try XCTUnwrap(entry["shape"]?.arrayValue).compactMap(\.intValue)
            let input = try file.float32("\(name).input")
            for (path, half) in [("half", true), ("float", false)] {
                let context = "\(name) \(path)"
                let ours = try Int8RowQuantized(quantizing: input, rows: shape[0], columns: shape[1], halfPrecisionFirst: half,
                                                pool: ThreadPool(threads: 2))
                let reference = try BNBInt8(file, prefix: "\(name).\(path)")
                if let i = firstDifference(Array(ours.codes), reference.codes.map { $0 }) {
                    XCTFail("\(context): code \(i) is \(ours.codes[i]), bitsandbytes \(reference.codes[i])")
                }
                assertBitsEqual(Array(ours.absmax), Array(reference.absmax), context + " SCB")
                if half {
                    let dequantized = try file.float32("\(name).half.dequant")
                    assertBitsEqual(ours.dequantized(), dequantized, context + " dequantized")
                    // bitsandbytes' own codes, wrapped without copying, dequantize to its values too.
                    assertBitsEqual(try reference.wrapped(rows: shape[0], columns: shape[1]).dequantized(), dequantized,
                                    context + " dequantized from bitsandbytes' codes")
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, 2 * 12)
    }

    /// bitsandbytes' `Linear8bitLt` (CPU, training mode: `MatMul8bitFp`) on the fixture's codes, forward
    /// and input gradient, against `LinearWeight` on the same codes through decode and panels. Both
    /// compute in Float32 with the same dequantized weight; the tolerance is twice the Float32 bound
    /// `2·(n + 4)·u·Σ|w·x|` (one for each side's summation order).
    func testLinearWeightMatchesLinear8bitLt() throws {
        let file = try Self.cases()
        let entry = try XCTUnwrap(Self.expected()["cases"]?.arrayValue?.first { $0["name"]?.stringValue == "forward" })
        let shape = try XCTUnwrap(entry["shape"]?.arrayValue).compactMap(\.intValue)
        let tokens = try XCTUnwrap(entry["tokens"]?.intValue)
        let (out, n) = (shape[0], shape[1])
        let q = try BNBInt8(file, prefix: "forward.half").wrapped(rows: out, columns: n)
        let w = q.dequantized().map(Double.init)
        let x = try file.float32("forward.x"), y = try file.float32("forward.y")
        let dy = try file.float32("forward.dy"), dx = try file.float32("forward.dx")
        for limit in [Int.max, 0] {
            var weight = LinearWeight(int8Rows: q)
            weight.decodeTokenLimit = limit
            let path = limit == 0 ? "panels" : "decode"
            var got = [Float](repeating: .nan, count: tokens * out)
            weight.forward(x, tokens: tokens, into: &got, pool: ThreadPool(threads: 2))
            var worst = 0.0
            for t in 0..<tokens {
                for r in 0..<out {
                    let magnitude = (0..<n).reduce(0.0) { $0 + abs(w[r * n + $1] * Double(x[t * n + $1])) }
                    let error = abs(Double(got[t * out + r]) - Double(y[t * out + r]))
                    worst = max(worst, error)
                    XCTAssertLessThanOrEqual(error, 4 * Double(n + 4) * 0x1p-24 * magnitude, "\(path) forward [\(t), \(r)]")
                }
            }
            print("int8 \(path) forward vs Linear8bitLt: max |error| \(worst)")
        }
        var got = [Float](repeating: .nan, count: tokens * n)
        LinearWeight(int8Rows: q).backwardInput(dy, tokens: tokens, into: &got, pool: ThreadPool(threads: 2))
        var worst = 0.0
        for t in 0..<tokens {
            for j in 0..<n {
                let magnitude = (0..<out).reduce(0.0) { $0 + abs(w[$1 * n + j] * Double(dy[t * out + $1])) }
                let error = abs(Double(got[t * n + j]) - Double(dx[t * n + j]))
                worst = max(worst, error)
                XCTAssertLessThanOrEqual(error, 4 * Double(out + 4) * 0x1p-24 * magnitude, "backwardInput [\(t), \(j)]")
            }
        }
        print("int8 backwardInput vs Linear8bitLt: max |error| \(worst)")
    }

    func testResultDoesNotDependOnThePool() throws {
        let x = BNBFixtures.generated(seed: 8, rows: 97, columns: 333)
        let serial = try Int8RowQuantized(quantizing: x, rows: 97, columns: 333)
        let parallel = try Int8RowQuantized(quantizing: x, rows: 97, columns: 333, pool: ThreadPool(threads: 3))
        XCTAssertEqual(Array(serial.codes), Array(parallel.codes))
        XCTAssertEqual(Array(serial.absmax).map(\.bitPattern), Array(parallel.absmax).map(\.bitPattern))
        let weight = try x.withUnsafeBufferPointer { try LinearWeight(outFeatures: 97, inFeatures: 333, quantizingInt8: $0) }
        var row = [Float](repeating: .nan, count: 333)
        weight.row(40, into: &row)
        XCTAssertEqual(row.map(\.bitPattern), Array(serial.dequantized()[(40 * 333)..<(41 * 333)]).map(\.bitPattern))
    }

    func testInvalidInputsAreErrorsThatSayWhat() throws {
        var x = [Float](repeating: 0.5, count: 200)
        x[150] = .nan
        assertQuantizationError(try Int8RowQuantized(quantizing: x, rows: 2, columns: 100), contains: "element 150")
        x[150] = 70_000
        assertQuantizationError(try Int8RowQuantized(quantizing: x, rows: 2, columns: 100), contains: "element 150 (70000.0) overflows float16")
        XCTAssertNoThrow(try Int8RowQuantized(quantizing: x, rows: 2, columns: 100, halfPrecisionFirst: false))
        assertQuantizationError(try Int8RowQuantized(quantizing: [1, 2, 3], rows: 2, columns: 2), contains: "4 elements, got 3 values")

        let codes = [Int8](repeating: 3, count: 6)
        for (absmax, fragment) in [([Float](arrayLiteral: 1, 2), "needs 3 row absmax values (SCB), got 2"),
                                   ([1, -2, 3], "row 1 has absmax (SCB) -2.0"), ([1, 2, .infinity], "row 2 has absmax (SCB) inf")] {
            try codes.withUnsafeBufferPointer { c in
                try absmax.withUnsafeBufferPointer { a in
                    assertQuantizationError(try Int8RowQuantized(rows: 3, columns: 2, codes: c, absmax: a, owner: nil), contains: fragment)
                }
            }
        }
        try codes.withUnsafeBufferPointer { c in
            try [Float](repeating: 1, count: 2).withUnsafeBufferPointer { a in
                assertQuantizationError(try Int8RowQuantized(rows: 2, columns: 4, codes: c, absmax: a, owner: nil),
                                        contains: "needs 8 int8 codes, got 6")
            }
        }
    }

    /// The comparisons above report one changed code and one flipped bit of the dequantized weight.
    func testCheckerReportsAFlippedCode() throws {
        let file = try Self.cases()
        let reference = try BNBInt8(file, prefix: "randn_3x37.half")
        let q = try Int8RowQuantized(quantizing: try file.float32("randn_3x37.input"), rows: 3, columns: 37)
        XCTAssertNil(firstDifference(Array(q.codes), reference.codes))
        var codes = reference.codes
        codes[50] &+= 1
        XCTAssertEqual(firstDifference(Array(q.codes), codes), 50)
        var values = try file.float32("randn_3x37.half.dequant")
        XCTAssertNil(firstDifference(q.dequantized().map(\.bitPattern), values.map(\.bitPattern)))
        values[70] = Float(bitPattern: values[70].bitPattern ^ 1)
        XCTAssertEqual(firstDifference(q.dequantized().map(\.bitPattern), values.map(\.bitPattern)), 70)
    }
}

/// One case's codes and row absmax as bitsandbytes wrote them (`<prefix>.CB`, `<prefix>.SCB`).
private struct BNBInt8 {
    let file: SafeTensorsFile
    let codes: [Int8]
    let absmax: UnsafeBufferPointer<Float>
    let codeBuffer: UnsafeBufferPointer<Int8>

    init(_ file: SafeTensorsFile, prefix: String) throws {
        self.file = file
        codeBuffer = try file.data(prefix + ".CB").bindMemory(to: Int8.self)
        codes = Array(codeBuffer)
        let scales = try file.data(prefix + ".SCB")
        // The writer puts F32 tensors first, so they are 4-byte aligned in the mapped file.
        XCTAssertEqual(Int(bitPattern: scales.baseAddress) % 4, 0)
        absmax = scales.bindMemory(to: Float.self)
    }

    /// The stored buffers, wrapped without copying.
    func wrapped(rows: Int, columns: Int) throws -> Int8RowQuantized {
        try Int8RowQuantized(rows: rows, columns: columns, codes: codeBuffer, absmax: absmax, owner: file)
    }
}
