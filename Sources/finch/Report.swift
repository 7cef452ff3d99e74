import ArgumentParser
import FinchTraining
import Foundation

/// `finch report`: write a run folder's `report.html` again from its files.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Regenerate report.html of a training run folder (charts, config, data, timing, evaluation).",
        discussion: """
            Reads RUN_DIR's metrics.jsonl, config.json, run.json, the newest checkpoint's trainer_state.json \
            and evaluation.json (when present), and writes one self-contained HTML page (inline SVG charts, \
            no network resource). finch dpo and finch sft write it themselves at each checkpoint and at the end.
            """)

    @Argument(help: "A run folder (the output_dir of finch dpo / finch sft).")
    var runDirectory: String

    @Option(name: .long, help: "Where to write the page (default: RUN_DIR/report.html).")
    var out: String?

    func run() throws {
        try CLI.run {
            let path = try TrainingReport.write(runFolder: runDirectory, to: out)
            print(path)
        }
    }
}
