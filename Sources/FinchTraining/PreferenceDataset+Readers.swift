import FinchFormats
import Foundation

/// The file formats ``PreferenceDataset`` reads, chosen by extension.
public enum PreferenceFileFormat: String, Sendable, Equatable {
    /// One JSON object per line (`.jsonl`, `.ndjson`); blank lines are skipped.
    case jsonl
    /// A JSON array of objects, or an object holding exactly one array of them (`{"train": [...]}`)
    /// (`.json`; a `.json` file that is really JSON Lines is read as such, as `datasets` does).
    case json
    /// Comma-separated values with a header row and RFC 4180 quoting (`.csv`); every cell is a string.
    case csv
    /// The same with tabs (`.tsv`, `.tab`).
    case tsv

    init(path: String) throws {
        switch (path as NSString).pathExtension.lowercased() {
        case "jsonl", "ndjson": self = .jsonl
        case "json": self = .json
        case "csv": self = .csv
        case "tsv", "tab": self = .tsv
        default:
            throw TrainingError(path, "unknown dataset format: use a .jsonl, .json, .csv or .tsv file")
        }
    }
}

/// Space, tab, line feed or carriage return.
@inline(__always)
func isJSONWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

/// A row as a reader produced it: its location and its fields, or why it could not be read.
enum RawRow {
    case fields(location: String, [(String, JSONValue)])
    case invalid(location: String, reason: String)
}

/// Readers from bytes to raw rows. Invalid UTF-8 is found before parsing and named by field: the
/// bytes are decoded with every ill-formed sequence replaced by U+FDD0, a noncharacter Unicode
/// reserves for such internal use, and the field whose value holds it is the culprit.
enum PreferenceFileReader {
    // Swift accepts no noncharacter in a literal; the fallback is never taken (U+FDD0 is a scalar).
    static let invalidMarker = Unicode.Scalar(0xFDD0 as UInt32) ?? "\u{FFFD}"

    /// Decodes UTF-8, marking ill-formed sequences with ``invalidMarker``; `valid` is false if any.
    static func decode(_ bytes: ArraySlice<UInt8>) -> (text: String, valid: Bool) {
        if let text = bytes.withUnsafeBufferPointer({ String(validating: $0, as: UTF8.self) }) { return (text, true) }
        var scalars = String.UnicodeScalarView()
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        loop: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): scalars.append(Unicode.UTF8.decode(encoded))
            case .error: scalars.append(invalidMarker)
            case .emptyInput: break loop
            }
        }
        return (String(scalars), false)
    }

    /// The first field (`chosen`, `prompt[1].content`, …) whose string holds the invalid-UTF-8
    /// marker, or nil.
    static func fieldWithInvalidUTF8(_ fields: [(String, JSONValue)]) -> String? {
        func find(_ value: JSONValue, _ path: String) -> String? {
            switch value {
            case .string(let s): return s.unicodeScalars.contains(invalidMarker) ? path : nil
            case .array(let items):
                for (i, item) in items.enumerated() { if let f = find(item, "\(path)[\(i)]") { return f } }
                return nil
            case .object(let members):
                for (key, item) in members { if let f = find(item, "\(path).\(key)") { return f } }
                return nil
            default: return nil
            }
        }
        for (key, value) in fields {
            if key.unicodeScalars.contains(invalidMarker) { return "a column name" }
            if let f = find(value, key) { return f }
        }
        return nil
    }

    static let utf8Advice = "not valid UTF-8 (re-encode the file as UTF-8)"

    /// The rows of a dataset file, read by the reader its extension names. A `.json` file that
    /// is really JSON Lines is read as such (the returned format says so); a single JSON object
    /// holding any of `rowKeys` is one row.
    static func read(path: String, rowKeys: [String]) throws -> (format: PreferenceFileFormat, rows: [RawRow]) {
        let format = try PreferenceFileFormat(path: path)
        guard FileManager.default.fileExists(atPath: path) else { throw TrainingError(path, "no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError(path, "cannot read the file") }
        let bytes = [UInt8](data)
        switch format {
        case .jsonl:
            return (format, jsonLines(bytes, path: path))
        case .json:
            if let parsed = try json(bytes, path: path, rowKeys: rowKeys) { return (format, parsed) }
            return (.jsonl, jsonLines(bytes, path: path))
        case .csv:
            return (format, try delimited(bytes, path: path, delimiter: UInt8(ascii: ",")))
        case .tsv:
            return (format, try delimited(bytes, path: path, delimiter: UInt8(ascii: "\t")))
        }
    }

    /// The examples `make` builds from the valid rows, in order. An invalid row, or one `make`
    /// rejects with a ``TrainingError``, throws — or, with `skipInvalid`, is listed in `skipped`
    /// as (location, reason) and left out.
    static func examples<Example>(of rows: [RawRow], skipInvalid: Bool, skipped: inout [(location: String, reason: String)],
                                  make: ([(String, JSONValue)], String) throws -> Example) throws -> [Example] {
        var examples: [Example] = []
        for row in rows {
            do {
                switch row {
                case let .invalid(location, reason):
                    throw TrainingError(location, reason)
                case let .fields(location, fields):
                    examples.append(try make(fields, location))
                }
            } catch let error as TrainingError where skipInvalid {
                skipped.append((error.subject, error.reason))
            }
        }
        return examples
    }

    /// Throws when no row became an example, saying why (no rows, or the first invalid one).
    static func requireExamples(_ count: Int, rows: Int, skipped: [(location: String, reason: String)], path: String,
                                noun: String) throws {
        guard count == 0 else { return }
        let why = rows == 0 ? "the file holds no rows"
            : "none of its \(rows) rows is valid (\(skipped.first.map { "first: \($0.location): \($0.reason)" } ?? ""))"
        throw TrainingError(path, "no \(noun): \(why)")
    }

    // MARK: JSON Lines

    static func jsonLines(_ bytes: [UInt8], path: String) -> [RawRow] {
        var rows: [RawRow] = []
        var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var lineNumber = 0
        while start <= bytes.count {
            lineNumber += 1
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
            let line = bytes[start..<end]
            start = end + 1
            guard line.contains(where: { !isJSONWhitespace($0) }) else { continue }
            rows.append(jsonObjectRow(line, location: "\(path):\(lineNumber)"))
        }
        return rows
    }

    static func jsonObjectRow(_ line: ArraySlice<UInt8>, location: String) -> RawRow {
        let (text, valid) = decode(line)
        let value: JSONValue
        do {
            value = try JSONValue.parse(text, path: location, rejectDuplicateKeys: true)
        } catch let error as FormatError {
            if !valid { return .invalid(location: location, reason: utf8Advice) }
            return .invalid(location: location, reason: error.reason.replacingOccurrences(of: "at line 1, column", with: "at column"))
        } catch {
            return .invalid(location: location, reason: "\(error)")
        }
        return objectRow(value, location: location, valid: valid)
    }

    static func objectRow(_ value: JSONValue, location: String, valid: Bool) -> RawRow {
        guard case .object(let fields) = value else {
            return .invalid(location: location, reason: "expected a JSON object (one row of the dataset), found \(value.typeName)")
        }
        if !valid {
            let field = fieldWithInvalidUTF8(fields)
            return .invalid(location: location, reason: field.map { "\($0): \(utf8Advice)" } ?? utf8Advice)
        }
        return .fields(location: location, fields)
    }

    // MARK: JSON

    /// Rows of a JSON document: an array of objects, or an object with exactly one array member.
    /// Each row's location is the line its object starts on. Returns nil for JSON Lines in a .json
    /// file: a document that does not parse but whose first line is a JSON object, or a single
    /// object that is a row (it has one of `rowKeys`, e.g. the chosen column).
    static func json(_ bytes: [UInt8], path: String, rowKeys: [String]) throws -> [RawRow]? {
        let (text, valid) = decode(bytes[...])
        let document: JSONValue
        do {
            document = try JSONValue.parse(text, path: path, rejectDuplicateKeys: true)
        } catch let error as FormatError {
            let firstLine = bytes.prefix { $0 != 0x0A }
            if case .fields = jsonObjectRow(firstLine.drop { $0 == 0xEF || $0 == 0xBB || $0 == 0xBF }, location: path) {
                return nil
            }
            throw TrainingError(path, valid ? error.reason : utf8Advice)
        }
        let items: [JSONValue]
        var member: Int?
        switch document {
        case .array(let array):
            items = array
        case .object(let members) where members.contains(where: { rowKeys.contains($0.0) }):
            // A single row (JSON Lines with one line, in a .json file).
            return nil
        case .object(let members):
            let arrays = members.indices.filter { members[$0].1.arrayValue != nil }
            guard arrays.count == 1, let only = arrays.first, let array = members[only].1.arrayValue else {
                let names = arrays.map { "\"\(members[$0].0)\"" }.joined(separator: ", ")
                throw TrainingError(path, "a JSON object must hold exactly one array of rows (e.g. {\"train\": [...]}); "
                                    + (arrays.isEmpty ? "this one holds none" : "this one holds \(arrays.count): \(names)"))
            }
            items = array
            member = only
        default:
            throw TrainingError(path, "expected a JSON array of rows (or an object holding one), found \(document.typeName)")
        }
        let utf8 = Array(text.utf8)
        var walker = JSONLineWalker(bytes: utf8)
        let lines = walker.elementLines(member: member)
        return items.enumerated().map { i, item in
            let line = i < lines.count ? lines[i] : 1
            return objectRow(item, location: "\(path):\(line)", valid: valid || !Self.contains(item, invalidMarker))
        }
    }

    static func contains(_ value: JSONValue, _ marker: Unicode.Scalar) -> Bool {
        switch value {
        case .string(let s): s.unicodeScalars.contains(marker)
        case .array(let items): items.contains { contains($0, marker) }
        case .object(let members): members.contains { $0.0.unicodeScalars.contains(marker) || contains($0.1, marker) }
        default: false
        }
    }

    // MARK: CSV and TSV

    /// Rows of an RFC 4180 file: a header row naming the columns, then one record per row. Quoted
    /// cells may hold delimiters, doubled quotes and line breaks; records end with LF, CRLF or CR;
    /// blank lines are skipped (as pandas does). Every cell is a string.
    static func delimited(_ bytes: [UInt8], path: String, delimiter: UInt8) throws -> [RawRow] {
        var records = DelimitedScanner(bytes: bytes, delimiter: delimiter).records()
        guard !records.isEmpty else { return [] }
        let header = records.removeFirst()
        if let problem = header.problem { throw TrainingError("\(path):\(header.line)", "header row: \(problem)") }
        var columns: [String] = []
        for cell in header.cells {
            guard let name = cell.withUnsafeBufferPointer({ String(validating: $0, as: UTF8.self) }) else {
                throw TrainingError("\(path):\(header.line)", "header row: \(utf8Advice)")
            }
            if columns.contains(where: { $0.utf8.elementsEqual(name.utf8) }) {
                throw TrainingError("\(path):\(header.line)", "header row: column \"\(name)\" appears twice")
            }
            columns.append(name)
        }
        return records.map { record in
            let location = "\(path):\(record.line)"
            if let problem = record.problem { return .invalid(location: location, reason: problem) }
            guard record.cells.count == columns.count else {
                let list = columns.map { "\"\($0)\"" }.joined(separator: ", ")
                if record.cells.count < columns.count {
                    return .invalid(location: location, reason: "\(columns[record.cells.count]): missing: the row has \(record.cells.count) "
                                    + "fields but the header has \(columns.count) (\(list)); quote cells that contain the delimiter or line breaks")
                }
                return .invalid(location: location, reason: "the row has \(record.cells.count) fields but the header has \(columns.count) "
                                + "(\(list)); quote cells that contain the delimiter or line breaks")
            }
            var fields: [(String, JSONValue)] = []
            for (name, cell) in zip(columns, record.cells) {
                guard let value = cell.withUnsafeBufferPointer({ String(validating: $0, as: UTF8.self) }) else {
                    return .invalid(location: location, reason: "\(name): \(utf8Advice)")
                }
                fields.append((name, .string(value)))
            }
            return .fields(location: location, fields)
        }
    }
}

/// Finds the line each top-level row of an already-validated JSON document starts on.
struct JSONLineWalker {
    let bytes: [UInt8]
    var position = 0
    let newlines: [Int]

    init(bytes: [UInt8]) {
        self.bytes = bytes
        newlines = bytes.indices.filter { bytes[$0] == 0x0A }
    }

    func line(of offset: Int) -> Int {
        var low = 0, high = newlines.count
        while low < high {
            let mid = (low + high) / 2
            if newlines[mid] < offset { low = mid + 1 } else { high = mid }
        }
        return low + 1
    }

    /// Lines of the elements of the top-level array, or of the array held by member `member` of
    /// the top-level object.
    mutating func elementLines(member: Int?) -> [Int] {
        skipWhitespace()
        if let member {
            position += 1 // {
            for index in 0... {
                skipWhitespace()
                skipValue() // key
                skipWhitespace()
                position += 1 // :
                skipWhitespace()
                if index == member { break }
                skipValue()
                skipWhitespace()
                position += 1 // ,
            }
        }
        var lines: [Int] = []
        position += 1 // [
        skipWhitespace()
        guard position < bytes.count, bytes[position] != UInt8(ascii: "]") else { return lines }
        while position < bytes.count {
            lines.append(line(of: position))
            skipValue()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ",") else { break }
            position += 1
            skipWhitespace()
        }
        return lines
    }

    mutating func skipWhitespace() {
        if position == 0, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        while position < bytes.count, isJSONWhitespace(bytes[position]) { position += 1 }
    }

    mutating func skipString() {
        position += 1
        while position < bytes.count, bytes[position] != UInt8(ascii: "\"") {
            position += bytes[position] == UInt8(ascii: "\\") ? 2 : 1
        }
        position += 1
    }

    mutating func skipValue() {
        guard position < bytes.count else { return }
        switch bytes[position] {
        case UInt8(ascii: "\""):
            skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            repeat {
                switch bytes[position] {
                case UInt8(ascii: "\""): skipString(); continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                default: break
                }
                position += 1
            } while depth > 0 && position < bytes.count
        default:
            while position < bytes.count, !isJSONWhitespace(bytes[position]),
                  ![UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}")].contains(bytes[position]) { position += 1 }
        }
    }
}

/// RFC 4180 records over bytes (cells stay bytes so that invalid UTF-8 is named by column).
struct DelimitedScanner {
    struct Record {
        var line: Int
        var cells: [[UInt8]]
        var problem: String?
    }

    let bytes: [UInt8]
    let delimiter: UInt8
    static let quote = UInt8(ascii: "\"")

    func records() -> [Record] {
        var records: [Record] = []
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        func atEndOfRecord(_ j: Int) -> Bool { j >= bytes.count || bytes[j] == 0x0A || bytes[j] == 0x0D }
        /// Moves past one line break at `j` (CRLF, LF or CR) and counts it.
        func skipLineBreak(_ j: inout Int) {
            guard j < bytes.count else { return }
            if bytes[j] == 0x0D, j + 1 < bytes.count, bytes[j + 1] == 0x0A { j += 1 }
            j += 1
            line += 1
        }
        while i < bytes.count {
            // A blank line is no record.
            if bytes[i] == 0x0A || bytes[i] == 0x0D { skipLineBreak(&i); continue }
            var record = Record(line: line, cells: [], problem: nil)
            while true {
                var cell: [UInt8] = []
                if i < bytes.count, bytes[i] == Self.quote {
                    let openedOn = line
                    i += 1
                    var closed = false
                    while i < bytes.count {
                        let byte = bytes[i]
                        if byte == Self.quote {
                            if i + 1 < bytes.count, bytes[i + 1] == Self.quote { cell.append(byte); i += 2; continue }
                            i += 1
                            closed = true
                            break
                        }
                        if byte == 0x0A || (byte == 0x0D && !(i + 1 < bytes.count && bytes[i + 1] == 0x0A)) { line += 1 }
                        cell.append(byte)
                        i += 1
                    }
                    if !closed, record.problem == nil {
                        record.problem = "a quoted cell opened on line \(openedOn) is never closed (a \" is missing)"
                    }
                    // Text between the closing quote and the delimiter breaks RFC 4180.
                    if i < bytes.count, bytes[i] != delimiter, !atEndOfRecord(i) {
                        if record.problem == nil {
                            record.problem = "cell \(record.cells.count + 1): text after a closing quote (write a literal \" as \"\" inside a quoted cell)"
                        }
                        while i < bytes.count, bytes[i] != delimiter, !atEndOfRecord(i) { cell.append(bytes[i]); i += 1 }
                    }
                } else {
                    while i < bytes.count, bytes[i] != delimiter, !atEndOfRecord(i) { cell.append(bytes[i]); i += 1 }
                }
                record.cells.append(cell)
                if i < bytes.count, bytes[i] == delimiter { i += 1; continue }
                skipLineBreak(&i)
                break
            }
            records.append(record)
        }
        return records
    }
}
