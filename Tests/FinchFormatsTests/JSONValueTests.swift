import FinchFormats
import XCTest

final class JSONValueTests: XCTestCase {
    func testParsesAllValueKindsKeepingOrderAndExactIntegers() throws {
        let v = try JSONValue.parse(#" {"b": [1, -2.5e3, true, false, null], "a": "x\u00e9\ud83d\ude00\n", "big": 18446744073709551615, "n": 9007199254740993} "#, path: "t")
        XCTAssertEqual(v.objectValue?.map(\.0), ["b", "a", "big", "n"])
        XCTAssertEqual(v["a"]?.stringValue, "xé😀\n")
        XCTAssertEqual(v["n"]?.intValue, 9_007_199_254_740_993) // beyond 2^53: exact
        XCTAssertNil(v["big"]?.intValue) // does not fit Int: not silently rounded
        XCTAssertEqual(v["b"]?.arrayValue?[1].doubleValue, -2500)
        XCTAssertEqual(v["b"]?.arrayValue?[4], .null)
    }

    func testErrorsNameLineAndColumn() {
        assertFormatError(try JSONValue.parse("{\n  \"a\": 1,\n  \"b\": tru\n}", path: "cfg.json"), path: "cfg.json", contains: "line 3", "expected 'true'")
        assertFormatError(try JSONValue.parse("{\"a\":1,}", path: "x"), contains: "expected a string key")
        assertFormatError(try JSONValue.parse("[1 2]", path: "x"), contains: "expected ',' or ']'")
        assertFormatError(try JSONValue.parse("{\"a\":1} x", path: "x"), contains: "after the JSON value")
        assertFormatError(try JSONValue.parse("\"\\ud800\"", path: "x"), contains: "surrogate")
        assertFormatError(try JSONValue.parse("01", path: "x"), contains: "after the JSON value")
        assertFormatError(try JSONValue.parse("", path: "x"), contains: "end of input")
        assertFormatError(try JSONValue.parse("\"a\u{1}\"", path: "x"), contains: "control character")
        assertFormatError(try JSONValue.parse(String(repeating: "[", count: 100_000), path: "x"), contains: "nesting deeper")
    }

    func testDuplicateKeysRejectedOnRequest() throws {
        XCTAssertNoThrow(try JSONValue.parse("{\"a\":1,\"a\":2}", path: "x"))
        assertFormatError(try JSONValue.parse("{\"a\":1,\"a\":2}", path: "x", rejectDuplicateKeys: true), contains: "duplicate key \"a\"")
    }

    func testCompactTextMatchesSerdeJSONStyle() throws {
        let v = JSONValue.object([("__metadata__", .object([("format", .string("pt"))])),
                                  ("w\"\u{1}é", .array([.number("1"), .bool(true), .null]))])
        XCTAssertEqual(v.compactText, #"{"__metadata__":{"format":"pt"},"w\"\u0001é":[1,true,null]}"#)
        XCTAssertEqual(try JSONValue.parse(v.compactText, path: "x"), v)
    }
}
