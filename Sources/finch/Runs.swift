import ArgumentParser
import FinchFormats
import FinchTraining
import Foundation

/// `finch runs`: the training runs under a folder, one line each.
struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List training runs with their kind, steps, final metrics, status and date.",
        discussion: """
            A run is a folder holding metrics.jsonl or run.json (the output_dir of finch dpo / finch sft), \
            searched up to three levels under DIR. Status: finished, running, resumable (stopped with a \
            checkpoint: --resume continues), interrupted (stopped without one) or failed. A run whose files \
            cannot be read is reported on stderr and left out.
            """)

    @Argument(help: "The folder holding the runs.")
    var directory = "runs"

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        try CLI.run {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
                throw FormatError(directory, "no such folder (finch dpo / finch sft write runs into their output_dir)")
            }
            guard isDirectory.boolValue else { throw FormatError(directory, "not a folder") }
            var reports: [TrainingReport] = []
            for folder in TrainingReport.runFolders(under: directory) {
                do {
                    reports.append(try TrainingReport(runFolder: folder))
                } catch {
                    CLI.log("skipped \(folder): " + (CLI.oneLine(error) ?? "\(error)"))
                }
            }
            reports.sort { ($0.startDate ?? .distantPast, $0.folder) < ($1.startDate ?? .distantPast, $1.folder) }
            if json {
                print(JSONValue.array(reports.map(Self.json)).compactText)
            } else if reports.isEmpty {
                print("no runs under \(directory)")
            } else {
                print(Self.table(reports, base: directory))
            }
        }
    }

    static func json(_ r: TrainingReport) -> JSONValue {
        func number(_ x: Double?) -> JSONValue { x.flatMap { $0.isFinite ? JSONValue.number("\($0)") : nil } ?? .null }
        let reportPath = (r.folder as NSString).appendingPathComponent(TrainingReport.fileName)
        return .object([
            ("path", .string(r.folder)), ("kind", .string(r.kind.rawValue)), ("status", .string(r.status.rawValue)),
            ("step", .number(String(r.lastStep))), ("max_steps", r.maxSteps.map { .number(String($0)) } ?? .null),
            ("loss", number(r.trainingRecords.last?["loss"])), ("eval_loss", number(r.last("eval_loss"))),
            ("metrics", .object(r.keyMetrics.map { ($0.key, number($0.value)) })),
            ("model", (r.record?.model ?? r.config?["model_name_or_path"]?.stringValue).map { .string($0) } ?? .null),
            ("started", r.startDate.map { .string(ISO8601DateFormatter().string(from: $0)) } ?? .null),
            ("report", FileManager.default.fileExists(atPath: reportPath) ? .string(reportPath) : .null),
        ])
    }

    /// An aligned table: text columns left, numbers right.
    static func table(_ reports: [TrainingReport], base: String) -> String {
        let dateFormat = DateFormatter()
        dateFormat.locale = Locale(identifier: "en_US_POSIX")
        dateFormat.dateFormat = "yyyy-MM-dd HH:mm"
        func f(_ x: Double?, _ format: String = "%.4f") -> String { x.map { $0.isFinite ? String(format: format, $0) : "nan" } ?? "-" }
        let header = ["RUN", "KIND", "STEPS", "LOSS", "METRICS", "STATUS", "STARTED"]
        let rightAligned: Set<Int> = [2, 3]
        let rows = reports.map { r -> [String] in
            var name = r.folder
            if name.hasPrefix(base + "/") { name = String(name.dropFirst(base.count + 1)) }
            let metrics: String
            switch r.kind {
            case .dpo:
                let acc = r.trainingRecords.last?["rewards/accuracies"], margin = r.trainingRecords.last?["rewards/margins"]
                metrics = acc == nil && margin == nil ? "-" : "acc \(f(acc, "%.3f"))  margin \(f(margin))"
            case .sft:
                let acc = r.trainingRecords.last?["mean_token_accuracy"]
                metrics = acc == nil ? "-" : "token acc \(f(acc, "%.3f"))"
            }
            let evalLoss = r.last("eval_loss").map { "  eval loss \(f($0))" } ?? ""
            return [name, r.kind.rawValue, r.maxSteps.map { "\(r.lastStep)/\($0)" } ?? String(r.lastStep),
                    f(r.trainingRecords.last?["loss"]), metrics + evalLoss, r.status.rawValue,
                    r.startDate.map { dateFormat.string(from: $0) } ?? "-"]
        }
        let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : (i == cells.count - 1 ? cell : cell + pad)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
