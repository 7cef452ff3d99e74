@testable import FinchTraining
import XCTest

/// The readers (JSONL, JSON, CSV, TSV), the schemas, bad input with and without skipping, the
/// column mapping and the train/eval split.
final class PreferenceDatasetTests: XCTestCase {
    static let standard = DPODataFixtures.data + "/standard.jsonl"

    func stripped(_ examples: [PreferenceExample]) -> [PreferenceExample] {
        examples.map { var e = $0; e.location = ""; return e }
    }

    /// The same ten rows as JSON Lines, a JSON array, a {"version", "train": [...]} object, CSV and
    /// TSV (written by Python's csv module: quotes, commas, tabs, CRLF and LF inside cells).
    func testEveryFormatReadsTheSameRows() throws {
        let (jsonl, report) = try PreferenceDataset.load(path: Self.standard)
        XCTAssertEqual(report.format, .jsonl)
        XCTAssertEqual(report.schema, .standard)
        XCTAssertEqual(report.rows, 10)
        XCTAssertEqual(jsonl.count, 10)
        // A blank line after the 4th row: line numbers count it.
        XCTAssertEqual(jsonl.map { Int($0.location.split(separator: ":").last ?? "") }, [1, 2, 3, 4, 6, 7, 8, 9, 10, 11])
        XCTAssertEqual(jsonl[5].prompt, .text("Write a haiku about \"quotes\", commas,\tand\nnewlines:"))
        XCTAssertEqual(jsonl[5].chosen, .text("Commas, \"quotes\" —\r\nnew lines fall like rain\n"))
        XCTAssertEqual(jsonl[2].rejected, .text(" Lyon 🇫🇷"))
        XCTAssertEqual(report.identicalPairs, [Self.standard + ":10"])
        for (file, format) in [("standard.json", PreferenceFileFormat.json), ("standard_split.json", .json),
                               ("standard.csv", .csv), ("standard.tsv", .tsv)] {
            let (examples, report) = try PreferenceDataset.load(path: DPODataFixtures.data + "/" + file)
            XCTAssertEqual(report.format, format, file)
            XCTAssertEqual(stripped(examples), stripped(jsonl), file)
        }
        let (json, _) = try PreferenceDataset.load(path: DPODataFixtures.data + "/standard.json")
        XCTAssertEqual(json.map { $0.location.split(separator: ":").last.map(String.init) }, ["2", "7", "12", "17", "22", "27", "32", "37", "42", "47"])
        // CSV records start on later lines when quoted cells hold line breaks (rows 5 and 6 have three each).
        let (csv, _) = try PreferenceDataset.load(path: DPODataFixtures.data + "/standard.csv")
        XCTAssertEqual(csv.map { Int($0.location.split(separator: ":").last ?? "") }, [2, 3, 4, 5, 6, 10, 14, 15, 16, 17])
    }

    func testSchemas() throws {
        for (file, schema) in [("conversational.jsonl", PreferenceSchema.conversational), ("implicit_standard.jsonl", .implicitStandard),
                               ("implicit_conversational.jsonl", .implicitConversational), ("orca.jsonl", .question)] {
            let (examples, report) = try PreferenceDataset.load(path: DPODataFixtures.data + "/" + file)
            XCTAssertEqual(report.schema, schema, file)
            XCTAssertEqual(examples.allSatisfy { ($0.prompt == nil) == (schema == .implicitStandard || schema == .implicitConversational) }, true)
            XCTAssertEqual(examples.allSatisfy(\.isQuestionSchema), schema == .question)
        }
        let (orca, _) = try PreferenceDataset.load(path: DPODataFixtures.data + "/orca.jsonl")
        XCTAssertEqual(orca[1].system, "")
        XCTAssertEqual(orca[1].prompt, .text("Translate to German: good morning"))
    }

    func testColumnMapping() throws {
        let path = try temporaryFile("renamed.jsonl", """
            {"id": 1, "instruction": "Say hi", "best": "Hi", "worst": "No"}
            {"id": 2, "instruction": "Say bye", "best": "Bye", "worst": "Hi"}
            """)
        let columns = try PreferenceColumns(parsing: "prompt=instruction, chosen=best,rejected=worst")
        let (examples, report) = try PreferenceDataset.load(path: path, columns: columns)
        XCTAssertEqual(examples[1], PreferenceExample(prompt: .text("Say bye"), chosen: .text("Bye"), rejected: .text("Hi"), location: path + ":2"))
        XCTAssertEqual(report.ignoredColumns, ["id"])
        assertTrainingError(try PreferenceColumns(parsing: "answer=best"), subject: "columns", contains: "unknown role \"answer\"")
        assertTrainingError(try PreferenceColumns(parsing: "chosen"), subject: "columns", contains: "role=column")
        assertTrainingError(try PreferenceColumns(parsing: "chosen=a,chosen=b"), subject: "columns", contains: "twice")
        assertTrainingError(try PreferenceDataset.load(path: path), subject: path + ":1", contains: "chosen: missing (found columns: id, instruction, best, worst")
        // A question column read as a plain prompt.
        let orca = try PreferenceDataset.load(path: DPODataFixtures.data + "/orca.jsonl", columns: PreferenceColumns(mapping: ["prompt": "question"]))
        XCTAssertEqual(orca.report.schema, .standard)
        XCTAssertEqual(orca.report.ignoredColumns, ["system"])
    }

    // MARK: Bad input: each names file:line and the field.

    /// Loading `contents` as a file named `name` fails on line `line`, with `fragment` in the message.
    func assertRowError(_ name: String, _ contents: String, line: Int, _ fragment: String,
                        file: StaticString = #filePath, testLine: UInt = #line) throws {
        let path = try temporaryFile(name, contents)
        assertTrainingError(try PreferenceDataset.load(path: path), subject: "\(path):\(line)", contains: fragment, file: file, line: testLine)
    }

    static let good = #"{"prompt": "p", "chosen": "c", "rejected": "r"}"#

    func testMalformedJSONLine() throws {
        try assertRowError("bad.jsonl", Self.good + "\n" + #"{"prompt": "p", "chosen": "c" "rejected": "r"}"#, line: 2, "invalid JSON at column 31")
        try assertRowError("array.jsonl", "[1, 2]\n", line: 1, "expected a JSON object")
    }

    func testMissingField() throws {
        try assertRowError("missing.jsonl", Self.good + "\n" + #"{"prompt": "p", "chosen": "c"}"#, line: 2, "rejected: missing")
        try assertRowError("message.jsonl", #"""
            {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant"}], "rejected": [{"role": "assistant", "content": "x"}]}
            """#, line: 1, "chosen[0].content: missing")
    }

    func testEmptyCompletion() throws {
        try assertRowError("empty.jsonl", #"{"prompt": "p", "chosen": "", "rejected": "r"}"#, line: 1, "chosen: empty")
        try assertRowError("empty-list.jsonl", #"""
            {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "x"}], "rejected": []}
            """#, line: 1, "rejected: empty")
    }

    func testNonStringValue() throws {
        try assertRowError("number.jsonl", #"{"prompt": "p", "chosen": 42, "rejected": "r"}"#, line: 1,
                           "chosen: expected a string or a list of {role, content} messages, found a number")
        try assertRowError("null.jsonl", #"{"prompt": null, "chosen": "c", "rejected": "r"}"#, line: 1, "prompt: null")
        try assertRowError("role.jsonl", #"""
            {"prompt": [{"role": 1, "content": "hi"}], "chosen": [{"role": "assistant", "content": "x"}], "rejected": [{"role": "assistant", "content": "y"}]}
            """#, line: 1, "prompt[0].role: expected a string, found a number")
        try assertRowError("orca.jsonl", #"{"system": 3, "question": "q", "chosen": "c", "rejected": "r"}"#, line: 1,
                           "system: expected a string, found a number")
    }

    func testMixedFormsAndSchemas() throws {
        try assertRowError("mixed.jsonl", Self.good + "\n" + #"{"prompt": "p", "chosen": [{"role": "assistant", "content": "x"}], "rejected": "r"}"#,
                           line: 2, "chosen: is a list of messages, but the file's first row holds strings")
        try assertRowError("schema.jsonl", #"{"chosen": "c", "rejected": "r"}"# + "\n" + Self.good, line: 2,
                           "prompt: present on this row but not on the first row")
    }

    func testInvalidUTF8NamesTheField() throws {
        var jsonl = Array("{\"prompt\": \"p\", \"chosen\": \"c\", \"rejected\": \"r\"}\n{\"prompt\": \"p\", \"chosen\": \"caf".utf8)
        jsonl += [0xE9] + Array("\", \"rejected\": \"r\"}\n".utf8)
        let path = try temporaryFile("latin1.jsonl", jsonl)
        assertTrainingError(try PreferenceDataset.load(path: path), subject: path + ":2", contains: "chosen: not valid UTF-8")

        let json = Array("[\n {\"prompt\": \"p\", \"chosen\": \"c\", \"rejected\": \"r\"},\n {\"prompt\": \"p\", \"chosen\": \"c\", \"rejected\": \"".utf8)
            + [0xFF, 0xFE] + Array("\"}\n]\n".utf8)
        let jsonPath = try temporaryFile("bad.json", json)
        assertTrainingError(try PreferenceDataset.load(path: jsonPath), subject: jsonPath + ":3", contains: "rejected: not valid UTF-8")

        let csv = Array("prompt,chosen,rejected\np,c,r\np,c,\"x".utf8) + [0xC3] + Array("\"\n".utf8)
        let csvPath = try temporaryFile("bad.csv", csv)
        assertTrainingError(try PreferenceDataset.load(path: csvPath), subject: csvPath + ":3", contains: "rejected: not valid UTF-8")
        let (kept, report) = try PreferenceDataset.load(path: csvPath, skipInvalid: true)
        XCTAssertEqual(kept.count, 1)
        XCTAssertEqual(report.skipped.map(\.location), [csvPath + ":3"])
    }

    func testRaggedAndBadlyQuotedCSV() throws {
        let path = try temporaryFile("ragged.csv", "prompt,chosen,rejected\np,c,r\np,c\np,c,r,extra\n\"p\"x,c,r\n\"p,c,r\n")
        assertTrainingError(try PreferenceDataset.load(path: path), subject: path + ":3", contains: "rejected: missing: the row has 2 fields but the header has 3")
        let (examples, report) = try PreferenceDataset.load(path: path, skipInvalid: true)
        XCTAssertEqual(examples.count, 1)
        XCTAssertEqual(report.rows, 5)
        XCTAssertEqual(report.skipped.map(\.location), [3, 4, 5, 6].map { "\(path):\($0)" })
        XCTAssertTrue(report.skipped[1].reason.contains("the row has 4 fields but the header has 3"), report.skipped[1].reason)
        XCTAssertTrue(report.skipped[2].reason.contains("text after a closing quote"), report.skipped[2].reason)
        XCTAssertTrue(report.skipped[3].reason.contains("never closed"), report.skipped[3].reason)
        let tsv = try temporaryFile("tabs.tsv", "prompt\tchosen\trejected\r\n\"a\tb\"\tc\td\r\n\r\ne\tf\tg")
        let (rows, _) = try PreferenceDataset.load(path: tsv)
        XCTAssertEqual(rows.map(\.prompt), [.text("a\tb"), .text("e")])
        XCTAssertEqual(rows.map(\.location), [tsv + ":2", tsv + ":4"])
        let header = try temporaryFile("header.csv", "prompt,chosen,chosen\na,b,c\n")
        assertTrainingError(try PreferenceDataset.load(path: header), subject: header + ":1", contains: "column \"chosen\" appears twice")
    }

    func testSkipInvalidCountsRowsAndReportsIdenticalPairs() throws {
        let path = try temporaryFile("mixed-quality.jsonl", """
            {"prompt": "p", "chosen": "same", "rejected": "same"}
            not json

            {"prompt": "p", "chosen": "", "rejected": "r"}
            {"prompt": "p", "chosen": "c", "rejected": "r", "score": 3}
            """)
        let (examples, report) = try PreferenceDataset.load(path: path, skipInvalid: true)
        XCTAssertEqual(examples.count, 2)
        XCTAssertEqual(report.rows, 4)
        XCTAssertEqual(report.examples, 2)
        XCTAssertEqual(report.skipped.map(\.location), [path + ":2", path + ":4"])
        XCTAssertEqual(report.identicalPairs, [path + ":1"])
        XCTAssertEqual(report.ignoredColumns, [])
        XCTAssertTrue(report.description.contains("2 skipped"), report.description)
        XCTAssertTrue(report.description.contains("identical chosen and rejected: \(path):1"), report.description)
    }

    func testEmptyDatasetIsAnError() throws {
        let allBad = try temporaryFile("all-bad.jsonl", "{\"prompt\": \"p\", \"chosen\": \"\", \"rejected\": \"r\"}\n")
        assertTrainingError(try PreferenceDataset.load(path: allBad, skipInvalid: true), subject: allBad,
                            contains: "no preference pairs: none of its 1 rows is valid (first: \(allBad):1: chosen: empty")
        let empty = try temporaryFile("empty.jsonl", "\n\n")
        assertTrainingError(try PreferenceDataset.load(path: empty), subject: empty, contains: "the file holds no rows")
        let header = try temporaryFile("header-only.csv", "prompt,chosen,rejected\n")
        assertTrainingError(try PreferenceDataset.load(path: header), subject: header, contains: "no preference pairs")
    }

    func testFileLevelErrors() throws {
        assertTrainingError(try PreferenceDataset.load(path: "/nonexistent/data.jsonl"), subject: "/nonexistent/data.jsonl", contains: "no such file")
        assertTrainingError(try PreferenceDataset.load(path: "data.parquet"), subject: "data.parquet", contains: "unknown dataset format")
        let two = try temporaryFile("two.json", "{\"train\": [], \"test\": []}")
        assertTrainingError(try PreferenceDataset.load(path: two), subject: two, contains: "exactly one array of rows")
        let broken = try temporaryFile("broken.json", "[\n {\"prompt\": \"p\",\n]\n")
        assertTrainingError(try PreferenceDataset.load(path: broken), subject: broken, contains: "invalid JSON at line 3")
        // JSON Lines in a .json file are read as JSON Lines, as `datasets` does.
        let lines = try temporaryFile("lines.json", "{\"prompt\": \"p\", \"chosen\": \"c\", \"rejected\": \"r\"}\n{\"prompt\": \"q\", \"chosen\": \"c\", \"rejected\": \"r\"}\n")
        let (examples, report) = try PreferenceDataset.load(path: lines)
        XCTAssertEqual(report.format, .jsonl)
        XCTAssertEqual(examples.map(\.location), [lines + ":1", lines + ":2"])
        let single = try temporaryFile("single.json", #"{"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}"#)
        XCTAssertEqual(try PreferenceDataset.load(path: single).examples.map(\.location), [single + ":1"])
    }

    func testSplitIsSeededAndKeepsFileOrder() throws {
        let (examples, _) = try PreferenceDataset.load(path: Self.standard)
        let (train, eval) = PreferenceDataset.split(examples, evalFraction: 0.25, seed: 42)
        XCTAssertEqual(eval.count, 3, "ceil(0.25 · 10)")
        XCTAssertEqual(train.count, 7)
        XCTAssertEqual(Set((train + eval).map(\.location)), Set(examples.map(\.location)))
        let order = examples.map(\.location)
        XCTAssertEqual(train.map { order.firstIndex(of: $0.location) ?? -1 }, train.map { order.firstIndex(of: $0.location) ?? -1 }.sorted())
        let again = PreferenceDataset.split(examples, evalFraction: 0.25, seed: 42)
        XCTAssertEqual(again.eval, eval)
        let other = PreferenceDataset.split(examples, evalFraction: 0.25, seed: 7)
        XCTAssertNotEqual(other.eval, eval, "another seed draws other rows (for this data)")
        XCTAssertEqual(PreferenceDataset.split(examples, evalFraction: 0, seed: 1).eval, [])
        XCTAssertEqual(PreferenceDataset.split(examples, evalFraction: 1, seed: 1).train.count, 1, "at least one pair stays in train")
    }
}
