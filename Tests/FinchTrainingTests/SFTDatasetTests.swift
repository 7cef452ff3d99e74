import FinchFormats
@testable import FinchTraining
import XCTest

/// Reading SFT rows in every form (text, prompt/completion strings and conversations, messages,
/// ShareGPT conversations, Alpaca), the column mapping and forced form, and every kind of bad
/// input with and without skipping.
final class SFTDatasetTests: XCTestCase {
    func testEveryFormIsRecognizedFromTheFirstRow() throws {
        let cases: [(String, SFTExampleFormat, Int)] = [
            ("text", .text, 7), ("prompt_completion", .promptCompletion, 6), ("conversational", .conversationalPromptCompletion, 4),
            ("messages", .messages, 4), ("sharegpt", .messages, 2), ("alpaca", .alpaca, 4),
        ]
        for (name, format, count) in cases {
            let path = SFTDataFixtures.data + "/\(name).jsonl"
            let (examples, report) = try SFTDataset.load(path: path)
            XCTAssertEqual(report.format, format, name)
            XCTAssertEqual(report.fileFormat, .jsonl, name)
            XCTAssertEqual(examples.count, count, name)
            XCTAssertEqual(report.rows, count, name)
            XCTAssertTrue(examples.allSatisfy { $0.format == format }, name)
            XCTAssertEqual(examples.first?.location, path + ":1")
            XCTAssertEqual(report.ignoredColumns, [], name)
        }
        let (pc, _) = try SFTDataset.load(path: SFTDataFixtures.data + "/prompt_completion.jsonl")
        XCTAssertEqual(pc[3].content, .promptCompletion(prompt: "", completion: "An empty prompt."))
        // ShareGPT {from, value} read as TRL's maybe_convert_to_chatml renames them.
        let (share, _) = try SFTDataset.load(path: SFTDataFixtures.data + "/sharegpt.jsonl")
        XCTAssertEqual(share[0].content, .messages([ChatMessage(role: "human", content: "Hello"), ChatMessage(role: "gpt", content: "Hi! How can I help?")]))
        let (alpaca, _) = try SFTDataset.load(path: SFTDataFixtures.data + "/alpaca.jsonl")
        XCTAssertEqual(alpaca[3].content, .alpaca(instruction: "Name a primary color.", input: "", output: "Red"))
    }

    /// The Alpaca prompt, with and without input, is the one the fixture script writes (and the
    /// one documented on ``SFTExample/alpacaPrompt(instruction:input:)``).
    func testAlpacaPromptTemplate() throws {
        let (examples, _) = try SFTDataset.load(path: SFTDataFixtures.data + "/alpaca.jsonl")
        let expected = try XCTUnwrap(try SFTDataFixtures.expected.get()["alpaca_prompts"]?.arrayValue).map { try $0.string() }
        for (example, want) in zip(examples, expected) {
            guard case let .promptCompletion(prompt, _) = example.normalized.content else { return XCTFail("not normalized") }
            XCTAssertEqual(prompt, want)
        }
        XCTAssertEqual(SFTExample.alpacaPrompt(instruction: "I", input: ""),
                       "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
                       + "### Instruction:\nI\n\n### Response:\n")
        XCTAssertEqual(SFTExample.alpacaPrompt(instruction: "I", input: "X"),
                       "Below is an instruction that describes a task, paired with an input that provides further context. "
                       + "Write a response that appropriately completes the request.\n\n### Instruction:\nI\n\n### Input:\nX\n\n### Response:\n")
        XCTAssertEqual(SFTExample(.alpaca(instruction: "I", input: "", output: "O"), location: "x").normalized,
                       SFTExample(.promptCompletion(prompt: SFTExample.alpacaPrompt(instruction: "I", input: ""), completion: "O"), location: "x"))
    }

    /// tatsu-lab/alpaca has `text` beside the instruction columns: TRL trains on `text`, and so
    /// does Finch unless told to read the Alpaca form.
    func testTextWinsOverAlpacaColumnsUnlessForced() throws {
        let path = try temporaryFile("tatsu.jsonl", #"{"instruction": "I", "input": "", "output": "O", "text": "whole"}"# + "\n")
        let (asText, report) = try SFTDataset.load(path: path)
        XCTAssertEqual(asText[0].content, .text("whole"))
        XCTAssertEqual(report.ignoredColumns, ["instruction", "input", "output"])
        let (asAlpaca, forced) = try SFTDataset.load(path: path, format: .alpaca)
        XCTAssertEqual(asAlpaca[0].content, .alpaca(instruction: "I", input: "", output: "O"))
        XCTAssertEqual(forced.format, .alpaca)
        XCTAssertEqual(forced.ignoredColumns, ["text"])
    }

    func testColumnMappingAndOtherFileFormats() throws {
        let path = try temporaryFile("renamed.jsonl", #"{"id": 1, "question": "Q?", "answer": "A."}"# + "\n")
        let (examples, report) = try SFTDataset.load(path: path, columns: ["prompt": "question", "completion": "answer"])
        XCTAssertEqual(examples, [SFTExample(.promptCompletion(prompt: "Q?", completion: "A."), location: path + ":1")])
        XCTAssertEqual(report.ignoredColumns, ["id"])
        XCTAssertEqual(try SFTColumns(parsing: "text=body, messages=chat"), try SFTColumns(mapping: ["text": "body", "messages": "chat"]))
        assertTrainingError(try SFTDataset.load(path: path, columns: ["chosen": "answer"]), subject: "columns", contains: "unknown role \"chosen\"")
        assertTrainingError(try SFTColumns(parsing: "text"), subject: "columns", contains: "not role=column")

        let csv = try temporaryFile("rows.csv", "prompt,completion\r\n\"Say \"\"hi\"\", twice\",\" hi hi\"\r\nQ,A\r\n")
        let (rows, csvReport) = try SFTDataset.load(path: csv)
        XCTAssertEqual(csvReport.fileFormat, .csv)
        XCTAssertEqual(rows.map(\.content), [.promptCompletion(prompt: "Say \"hi\", twice", completion: " hi hi"), .promptCompletion(prompt: "Q", completion: "A")])
        let json = try temporaryFile("rows.json", "{\"train\": [\n {\"text\": \"a\"},\n {\"text\": \"b\"}\n]}\n")
        let (texts, _) = try SFTDataset.load(path: json)
        XCTAssertEqual(texts.map(\.location), [json + ":2", json + ":3"])
        let single = try temporaryFile("one.json", #"{"messages": [{"role": "user", "content": "hi"}]}"#)
        XCTAssertEqual(try SFTDataset.load(path: single).report.fileFormat, .jsonl)
    }

    // MARK: Bad input

    func assertRowError(_ name: String, _ contents: String, line: Int, _ fragment: String, format: SFTExampleFormat? = nil,
                        file: StaticString = #filePath, testLine: UInt = #line) throws {
        let path = try temporaryFile(name, contents)
        assertTrainingError(try SFTDataset.load(path: path, format: format), subject: "\(path):\(line)", contains: fragment, file: file, line: testLine)
    }

    func testMalformedLine() throws {
        try assertRowError("bad.jsonl", #"{"text": "a"}"# + "\n" + #"{"text": "b" "x": 1}"#, line: 2, "invalid JSON at column")
        try assertRowError("array.jsonl", "[1]\n", line: 1, "expected a JSON object")
        try assertRowError("quoted.csv", "text\n\"never closed\n", line: 2, "never closed")
    }

    func testMissingFields() throws {
        try assertRowError("no-completion.jsonl", #"{"prompt": "p", "completion": "c"}"# + "\n" + #"{"prompt": "p"}"#, line: 2, "completion: missing")
        try assertRowError("no-text.jsonl", #"{"text": "a"}"# + "\n" + #"{"body": "b"}"#, line: 2, "text: missing")
        try assertRowError("no-output.jsonl", #"{"instruction": "i", "output": "o"}"# + "\n" + #"{"instruction": "i"}"#, line: 2, "output: missing")
        try assertRowError("no-columns.jsonl", #"{"question": "q", "answer": "a"}"#, line: 1, "no SFT columns")
        try assertRowError("no-content.jsonl", #"{"messages": [{"role": "user"}]}"#, line: 1, "messages[0].content: missing")
        try assertRowError("no-role.jsonl", #"{"messages": [{"content": "hi"}]}"#, line: 1, "messages[0].role: missing")
    }

    func testEmptyValues() throws {
        try assertRowError("empty-text.jsonl", #"{"text": ""}"#, line: 1, "text: empty")
        try assertRowError("empty-completion.jsonl", #"{"prompt": "p", "completion": ""}"#, line: 1, "completion: empty")
        try assertRowError("empty-output.jsonl", #"{"instruction": "i", "input": "x", "output": ""}"#, line: 1, "output: empty")
        try assertRowError("empty-instruction.jsonl", #"{"instruction": "", "output": "o"}"#, line: 1, "instruction: empty")
        try assertRowError("empty-messages.jsonl", #"{"messages": []}"#, line: 1, "messages: empty message list")
        try assertRowError("empty-turns.jsonl", #"{"prompt": [{"role": "user", "content": "q"}], "completion": []}"#, line: 1,
                           "completion: empty message list")
    }

    func testWrongTypes() throws {
        try assertRowError("number.jsonl", #"{"text": 42}"#, line: 1, "text: expected a string, found a number")
        try assertRowError("null.jsonl", #"{"text": "a"}"# + "\n" + #"{"text": null}"#, line: 2, "text: null")
        try assertRowError("messages-string.jsonl", #"{"messages": "hi"}"#, line: 1, "messages: expected a list of {role, content} messages, found a string")
        try assertRowError("message-number.jsonl", #"{"messages": [3]}"#, line: 1, "messages[0]: expected a {role, content} message, found a number")
        try assertRowError("content-object.jsonl", #"{"messages": [{"role": "user", "content": {"a": 1}}]}"#, line: 1,
                           "messages[0].content: expected a string, found an object")
        try assertRowError("input-number.jsonl", #"{"instruction": "i", "input": 3, "output": "o"}"#, line: 1, "input: expected a string, found a number")
        try assertRowError("mixed.jsonl", #"{"prompt": "p", "completion": [{"role": "assistant", "content": "x"}]}"#, line: 1,
                           "completion: is a list of messages, but the prompt is a string")
        try assertRowError("mixed2.jsonl", #"{"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "x"}]}"#
                           + "\n" + #"{"prompt": "q", "completion": "x"}"#, line: 2, "prompt: is a string, but the file's first row holds conversations")
        try assertRowError("form.jsonl", #"{"text": "a"}"# + "\n" + #"{"text": "b", "prompt": "p"}"#, line: 2, "prompt: present on this row but not on the first row")
    }

    func testInvalidUTF8NamesTheField() throws {
        let jsonl = Array("{\"text\": \"ok\"}\n{\"text\": \"caf".utf8) + [0xE9] + Array("\"}\n".utf8)
        let path = try temporaryFile("latin1.jsonl", jsonl)
        assertTrainingError(try SFTDataset.load(path: path), subject: path + ":2", contains: "text: not valid UTF-8")
        let csv = Array("prompt,completion\np,c\np,\"x".utf8) + [0xC3] + Array("\"\n".utf8)
        let csvPath = try temporaryFile("bad.csv", csv)
        assertTrainingError(try SFTDataset.load(path: csvPath), subject: csvPath + ":3", contains: "completion: not valid UTF-8")
    }

    func testSkipInvalidCountsRows() throws {
        let path = try temporaryFile("mixed.jsonl", [
            #"{"prompt": "p", "completion": "c"}"#, #"{"prompt": "p", "completion": ""}"#, "not json", "",
            #"{"prompt": "p", "completion": 3}"#, #"{"prompt": "q", "completion": "d"}"#,
        ].joined(separator: "\n"))
        let (examples, report) = try SFTDataset.load(path: path, skipInvalid: true)
        XCTAssertEqual(examples.map(\.location), [path + ":1", path + ":6"])
        XCTAssertEqual(report.rows, 5)
        XCTAssertEqual(report.examples, 2)
        XCTAssertEqual(report.skipped.map(\.location), [path + ":2", path + ":3", path + ":5"])
        XCTAssertTrue(report.description.contains("2 examples, 3 skipped"), report.description)
        XCTAssertTrue(report.description.contains("skipped \(path):2: completion: empty"), report.description)

        let none = try temporaryFile("none.jsonl", #"{"text": ""}"# + "\n")
        assertTrainingError(try SFTDataset.load(path: none, skipInvalid: true), subject: none, contains: "no SFT examples: none of its 1 rows is valid")
        let empty = try temporaryFile("empty.jsonl", "\n\n")
        assertTrainingError(try SFTDataset.load(path: empty), subject: empty, contains: "the file holds no rows")
        assertTrainingError(try SFTDataset.load(path: "/nonexistent/x.jsonl"), subject: "/nonexistent/x.jsonl", contains: "no such file")
        assertTrainingError(try SFTDataset.load(path: "data.parquet"), subject: "data.parquet", contains: "unknown dataset format")
    }

    func testSplitIsSeededAndKeepsFileOrder() throws {
        let examples = (1...10).map { SFTExample(.text("t\($0)"), location: "f:\($0)") }
        let (train, eval) = SFTDataset.split(examples, evalFraction: 0.25, seed: 3)
        XCTAssertEqual(eval.count, 3)
        XCTAssertEqual(train.count + eval.count, 10)
        XCTAssertEqual(train.map(\.location), train.map(\.location).sorted { Int($0.dropFirst(2))! < Int($1.dropFirst(2))! })
        XCTAssertEqual(SFTDataset.split(examples, evalFraction: 0.25, seed: 3).eval, eval)
        // The same draw as the DPO split for the same count and seed.
        let pairs = (1...10).map { PreferenceExample(prompt: .text("p"), chosen: .text("c\($0)"), rejected: .text("r"), location: "f:\($0)") }
        XCTAssertEqual(PreferenceDataset.split(pairs, evalFraction: 0.25, seed: 3).eval.map(\.location), eval.map(\.location))
        XCTAssertEqual(SFTDataset.split(examples, evalFraction: 0, seed: 3).train, examples)
    }
}
