import FinchFormats
import Foundation

/// The report page: one self-contained HTML file (inline CSS and SVG, no script, no network
/// resource; a Content-Security-Policy forbids any), every string from a file escaped.
extension TrainingReport {
    /// One chart: its title and the metric keys drawn in it (training keys solid, their `eval_`
    /// twins dashed).
    struct ChartSpec {
        var title: String
        var keys: [(key: String, name: String, color: String)]
        var percent = false
    }

    static let blue = "#2563eb", orange = "#ea580c", green = "#16a34a", red = "#dc2626", grey = "#6b7280", purple = "#7c3aed"

    /// The charts of a kind of run; keys nobody logged are left out, and a chart with no data at
    /// all is dropped (except the loss).
    var chartSpecs: [ChartSpec] {
        var specs: [ChartSpec]
        switch kind {
        case .dpo:
            specs = [
                ChartSpec(title: "Loss", keys: [("loss", "train", Self.blue)]),
                ChartSpec(title: "Reward accuracy", keys: [("rewards/accuracies", "train", Self.blue)], percent: true),
                ChartSpec(title: "Reward margin (chosen − rejected)", keys: [("rewards/margins", "train", Self.blue)]),
                ChartSpec(title: "Rewards", keys: [("rewards/chosen", "chosen", Self.green), ("rewards/rejected", "rejected", Self.red)]),
                ChartSpec(title: "Log-probabilities", keys: [("logps/chosen", "chosen", Self.green), ("logps/rejected", "rejected", Self.red)]),
                ChartSpec(title: "Mean logits", keys: [("logits/chosen", "chosen", Self.green), ("logits/rejected", "rejected", Self.red)]),
            ]
        case .sft:
            specs = [
                ChartSpec(title: "Loss", keys: [("loss", "train", Self.blue)]),
                ChartSpec(title: "Mean token accuracy", keys: [("mean_token_accuracy", "train", Self.blue)], percent: true),
                ChartSpec(title: "Entropy", keys: [("entropy", "train", Self.blue)]),
            ]
        }
        specs += [
            ChartSpec(title: "Learning rate", keys: [("learning_rate", "learning rate", Self.purple)]),
            ChartSpec(title: "Gradient norm (before clipping)", keys: [("grad_norm", "grad norm", Self.grey)]),
            ChartSpec(title: "Throughput (tokens/s)", keys: [("tokens_per_second", "tokens/s", Self.grey)]),
        ]
        if kind == .sft { specs.append(ChartSpec(title: "Tokens seen", keys: [("num_tokens", "num_tokens", Self.grey)])) }
        // Whatever else was logged (rpo's nll_loss, a new TRL metric), one chart per key.
        let shown = Set(specs.flatMap { $0.keys.flatMap { [$0.key, "eval_" + $0.key] } })
        let skipped: Set<String> = ["epoch", "num_tokens", "pairs_per_second", "sequences_per_second"]
        var extra: [String] = []
        for r in metrics {
            for (key, _) in r.values {
                let base = key.hasPrefix("eval_") ? String(key.dropFirst(5)) : key
                if !shown.contains(key), !shown.contains(base), !skipped.contains(base), !extra.contains(base) { extra.append(base) }
            }
        }
        specs += extra.map { ChartSpec(title: $0, keys: [($0, "train", Self.blue)]) }
        return specs.filter { spec in
            spec.title == "Loss" || spec.keys.contains { k in metrics.contains { $0[k.key] != nil || $0["eval_" + k.key] != nil } }
        }
    }

    /// The points of `key`, in step order of the file.
    func points(_ key: String) -> [(x: Double, y: Double)] {
        metrics.compactMap { r in r[key].map { (Double(r.step), $0) } }
    }

    func chart(_ spec: ChartSpec) -> SVGLineChart {
        var series: [SVGLineChart.Series] = []
        for k in spec.keys where metrics.contains(where: { $0[k.key] != nil }) || spec.keys.count == 1 {
            series.append(.init(name: k.name, points: points(k.key), color: k.color))
        }
        for k in spec.keys where metrics.contains(where: { $0["eval_" + k.key] != nil }) {
            let name = spec.keys.count == 1 ? "eval" : k.name + " (eval)"
            series.append(.init(name: name, points: points("eval_" + k.key), color: spec.keys.count == 1 ? Self.orange : k.color, dashed: true))
        }
        var chart = SVGLineChart(title: spec.title, series: series)
        if spec.percent { chart.format = { String(format: "%.1f%%", $0 * 100) } }
        return chart
    }

    // MARK: - Formatting

    static func number(_ x: Double?) -> String {
        guard let x else { return "—" }
        guard x.isFinite else { return x.isNaN ? "NaN" : (x > 0 ? "∞" : "−∞") }
        if x == 0 { return "0" }
        if abs(x) >= 1e6 || abs(x) < 1e-3 { return NiceScale.scientific(x, significant: 4) }
        return String(format: abs(x) >= 100 ? "%.1f" : "%.4g", x)
    }

    static func percent(_ x: Double?) -> String {
        guard let x, x.isFinite else { return number(x) }
        return String(format: "%.1f%%", x * 100)
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "—" }
        let s = Int(seconds.rounded())
        if s < 60 { return String(format: "%.1f s", seconds) }
        return s >= 3600 ? String(format: "%d h %02d min %02d s", s / 3600, s / 60 % 60, s % 60) : String(format: "%d min %02d s", s / 60, s % 60)
    }

    static func bytes(_ n: Int) -> String {
        n >= 1 << 30 ? String(format: "%.2f GB", Double(n) / 1e9) : String(format: "%.0f MB", Double(n) / 1e6)
    }

    static func date(_ d: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss ZZZZZ"
        return f.string(from: d)
    }

    /// A table of label/value rows, both escaped.
    static func table(_ rows: [(String, String)], classes: String = "kv") -> String {
        "<table class=\"\(classes)\"><tbody>" + rows.map { "<tr><th>\(HTML.escape($0.0))</th><td>\(HTML.escape($0.1))</td></tr>" }.joined()
            + "</tbody></table>"
    }

    /// A JSON value for a table cell: strings as they are, `{min, median, max}` as `a / b / c`,
    /// other values as compact JSON.
    static func cell(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return s
        case .null: return "—"
        case .object(let members) where members.map(\.0) == ["min", "median", "max"]:
            return members.map { $0.1.compactText }.joined(separator: " / ")
        default: return v.compactText
        }
    }

    /// Nested objects flattened to `a › b` rows.
    static func flatten(_ v: JSONValue, prefix: String = "") -> [(String, String)] {
        if case .object(let members) = v, members.map(\.0) != ["min", "median", "max"] {
            return members.flatMap { flatten($0.1, prefix: prefix.isEmpty ? $0.0 : prefix + " › " + $0.0) }
        }
        return [(prefix, cell(v))]
    }

    // MARK: - Sections

    var headline: [(String, String)] {
        var items: [(String, String)] = [("final loss", Self.number(trainingRecords.last?["loss"]))]
        if let v = last("eval_loss") { items.append(("eval loss", Self.number(v))) }
        switch kind {
        case .dpo:
            items.append(("reward accuracy", Self.percent(last("rewards/accuracies"))))
            items.append(("reward margin", Self.number(last("rewards/margins"))))
            if let v = last("eval_rewards/accuracies") { items.append(("eval reward accuracy", Self.percent(v))) }
        case .sft:
            items.append(("token accuracy", Self.percent(last("mean_token_accuracy"))))
            if let v = last("eval_mean_token_accuracy") { items.append(("eval token accuracy", Self.percent(v))) }
        }
        items.append(("steps", maxSteps.map { "\(lastStep) / \($0)" } ?? String(lastStep)))
        return items
    }

    var timingRows: [(String, String)] {
        var rows: [(String, String)] = []
        if let record, !record.sessions.isEmpty {
            let sessions = record.sessions
            let seconds = sessions.reduce(0) { $0 + $1.trainingSeconds }
            let steps = sessions.reduce(0) { $0 + max(0, $1.step - $1.startStep) }
            let tokens = sessions.reduce(0) { $0 + $1.tokens }
            let examples = sessions.reduce(0) { $0 + $1.examples }
            let wall = sessions.reduce(0.0) { $0 + max(0, $1.updated.timeIntervalSince($1.started)) }
            rows.append(("sessions", sessions.count == 1 ? "1" : "\(sessions.count) (the first run and \(sessions.count - 1) resume\(sessions.count > 2 ? "s" : ""))"))
            rows.append(("training time", Self.duration(seconds)))
            rows.append(("wall time (model load included)", Self.duration(wall)))
            rows.append(("steps trained", String(steps)))
            if seconds > 0 {
                rows.append(("steps per second", String(format: "%.3f", Double(steps) / seconds)))
                rows.append(("\(record.unit) per second", String(format: "%.2f", Double(examples) / seconds)))
                rows.append(("tokens per second", String(format: "%.0f", Double(tokens) / seconds)))
            }
            let peaks = sessions.compactMap(\.peakResidentBytes)
            if let peak = peaks.max() { rows.append(("peak memory (resident, VmHWM)", Self.bytes(peak))) }
            if sessions.count > 1 {
                for (i, s) in sessions.enumerated() {
                    rows.append(("session \(i + 1)", "\(Self.date(s.started)): steps \(s.startStep)→\(s.step) in \(Self.duration(s.trainingSeconds)), "
                                 + "\(s.status.rawValue)\(s.peakResidentBytes.map { ", peak " + Self.bytes($0) } ?? "")"))
                }
            }
        } else {
            let throughput = trainingRecords.compactMap { $0["tokens_per_second"] }.filter(\.isFinite)
            if !throughput.isEmpty {
                rows.append(("tokens per second (mean of the logged windows)", String(format: "%.0f", throughput.reduce(0, +) / Double(throughput.count))))
            }
            rows.append(("run.json", "missing: timing and memory were not recorded"))
        }
        return rows
    }

    var fileRows: [(String, String)] {
        var rows: [(String, String)] = []
        let adapter = FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent(PEFTAdapterFolder.weightsFile))
        rows.append(("adapter (PEFT)", adapter ? "adapter_config.json, adapter_model.safetensors" : "not saved yet"))
        rows.append(("checkpoints", checkpoints.isEmpty ? "none" : checkpoints.map { ($0.path as NSString).lastPathComponent }.joined(separator: ", ")))
        rows.append(("metrics", "\(Self.metricsFile) (\(trainingRecords.count) training and \(evaluationRecords.count) evaluation records)"))
        rows.append(("TensorBoard", eventFiles.isEmpty ? "no event file" : eventFiles.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
                     + " (tensorboard --logdir \(folder))"))
        return rows
    }

    func evaluationSection(_ e: EvaluationSummary) -> String {
        var out = "<section><h2>Evaluation\(e.split.map { " on the " + HTML.escape($0) + " split" } ?? "")</h2>"
        if !e.metrics.isEmpty {
            out += "<table class=\"eval\"><thead><tr><th>metric</th><th>before</th><th>after</th><th>change</th></tr></thead><tbody>"
            for m in e.metrics {
                let show = m.format == .percent ? Self.percent : Self.number
                var change = "—", direction = ""
                if let b = m.before, let a = m.after, b.isFinite, a.isFinite {
                    let d = a - b
                    change = m.format == .percent ? String(format: "%+.1f points", d * 100) : (d >= 0 ? "+" : "−") + Self.number(abs(d))
                    direction = d > 0 ? " class=\"up\"" : d < 0 ? " class=\"down\"" : ""
                }
                out += "<tr><th>\(HTML.escape(m.name))</th><td>\(HTML.escape(show(m.before)))</td><td>\(HTML.escape(show(m.after)))</td>"
                    + "<td\(direction)>\(HTML.escape(change))</td></tr>"
            }
            out += "</tbody></table>"
        }
        if !e.samples.isEmpty {
            // Folded: 50 replies side by side would push the training curves several screens down.
            let changed = e.samples.filter { $0.before != $0.after }.count
            out += "<details><summary>Sample generations: \(e.samples.count) prompts, \(changed) with a changed reply</summary>"
            for s in e.samples {
                out += "<div class=\"sample\"><div class=\"prompt\"><span class=\"label\">prompt</span><pre>\(HTML.escape(s.prompt))</pre></div>"
                    + "<div class=\"pair\"><div><span class=\"label\">before</span><pre>\(HTML.escape(s.before))</pre></div>"
                    + "<div><span class=\"label\">after</span><pre>\(HTML.escape(s.after))</pre></div></div></div>"
            }
            out += "</details>"
        }
        return out + "</section>"
    }

    static let css = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;background:#f9fafb;margin:0}
        main{max-width:1240px;margin:0 auto;padding:24px}
        h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
        h3{font-size:15px;margin:18px 0 8px}
        .sub{color:#4b5563;margin:0}.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;margin-right:6px}
        .kind{background:#dbeafe;color:#1e40af}.finished{background:#dcfce7;color:#166534}.running{background:#e0f2fe;color:#075985}
        .resumable{background:#fef9c3;color:#854d0e}.interrupted{background:#fee2e2;color:#991b1b}.failed{background:#fee2e2;color:#991b1b}
        .error{background:#fef2f2;border:1px solid #fecaca;color:#991b1b;padding:8px 12px;border-radius:6px;margin-top:12px;white-space:pre-wrap}
        .cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:16px}
        .card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:130px}
        .card .v{font-size:20px;font-weight:600}.card .k{color:#6b7280;font-size:12px}
        .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(540px,100%),1fr));gap:14px}
        .charts figure{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:6px}
        svg.chart{width:100%;height:auto;display:block}
        .chart-title{font-size:14px;font-weight:600;fill:#111827}.tick{font-size:11px;fill:#4b5563}.caption{font-size:11px;fill:#6b7280}
        .legend{font-size:11px;fill:#374151}.grid{stroke:#eef0f3;stroke-width:1}.axis{stroke:#9ca3af}
        .frame{fill:none;stroke:#d1d5db}.nodata{font-size:13px;fill:#9ca3af}
        table{border-collapse:collapse;background:#fff;border:1px solid #e5e7eb}
        th,td{text-align:left;padding:4px 10px;border-bottom:1px solid #f3f4f6;vertical-align:top}
        table.kv th{color:#374151;font-weight:500;white-space:nowrap}table.kv td{font-family:ui-monospace,Menlo,monospace;font-size:13px;word-break:break-all}
        table.eval td{font-variant-numeric:tabular-nums}td.up{color:#166534;font-weight:600}td.down{color:#991b1b;font-weight:600}
        .cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));gap:20px}
        .sample{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px;margin-bottom:12px}
        .pair{display:grid;grid-template-columns:1fr 1fr;gap:10px}.label{color:#6b7280;font-size:12px;font-weight:600;text-transform:uppercase}
        pre{white-space:pre-wrap;word-wrap:break-word;margin:4px 0;font:13px/1.4 ui-monospace,Menlo,monospace}
        details{margin-top:14px}summary{cursor:pointer;font-weight:600;margin-bottom:10px}
        footer{color:#9ca3af;font-size:12px;margin-top:30px}
        """

    /// The whole page.
    public func html(generated: Date = Date()) -> String {
        let name = (folder as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? folder
        var out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        out += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        out += "<title>\(HTML.escape(name)) · finch \(kind.rawValue) report</title><style>\(Self.css)</style></head><body><main>"

        // Header.
        out += "<h1>\(HTML.escape(name))</h1><p class=\"sub\"><span class=\"badge kind\">\(kind.rawValue.uppercased())</span>"
            + "<span class=\"badge \(status.rawValue)\">\(status.rawValue)</span>"
        var facts: [String] = []
        if let model = record?.model ?? config?["model_name_or_path"]?.stringValue { facts.append("model " + model) }
        if let data = record?.dataset ?? config?["dataset"]?.stringValue { facts.append("data " + data) }
        if let start = startDate { facts.append("started " + Self.date(start)) }
        out += HTML.escape(facts.joined(separator: " · ")) + "</p>"
        if let error = record?.sessions.last?.error { out += "<div class=\"error\">\(HTML.escape(error))</div>" }
        if status == .resumable, let c = checkpoints.last {
            out += "<p class=\"sub\">Stopped at step \(lastStep); \(HTML.escape((c.path as NSString).lastPathComponent)) holds the state to continue from (finch \(kind.rawValue) … --resume).</p>"
        }
        out += "<div class=\"cards\">" + headline.map {
            "<div class=\"card\"><div class=\"v\">\(HTML.escape($0.1))</div><div class=\"k\">\(HTML.escape($0.0))</div></div>"
        }.joined() + "</div>"

        if let evaluation { out += evaluationSection(evaluation) }

        out += "<section><h2>Training curves</h2><div class=\"charts\">"
        for spec in chartSpecs { out += "<figure>" + chart(spec).render() + "</figure>" }
        out += "</div></section>"

        out += "<div class=\"cols\"><section><h2>Timing and memory</h2>" + Self.table(timingRows) + "</section>"
        var dataRows: [(String, String)] = []
        if let stats = record?.datasetStatistics, !stats.isNull { dataRows = Self.flatten(stats) }
        if dataRows.isEmpty { dataRows = [("dataset statistics", "not recorded (no run.json)")] }
        out += "<section><h2>Dataset</h2>" + Self.table(dataRows) + "</section></div>"

        out += "<div class=\"cols\"><section><h2>Configuration</h2>"
        if let members = config?.objectValue {
            out += Self.table(members.map { ($0.0, Self.cell($0.1)) })
        } else {
            out += Self.table([("config.json", "missing")])
        }
        out += "</section><section><h2>Files</h2>" + Self.table(fileRows) + "</section></div>"
        out += "<footer>Written by finch on \(HTML.escape(Self.date(generated))) from \(HTML.escape(folder)). "
            + "Hover a point for its value. Regenerate with: finch report \(HTML.escape(folder))</footer>"
        return out + "</main></body></html>\n"
    }
}
