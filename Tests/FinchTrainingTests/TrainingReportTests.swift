import FinchFormats
@testable import FinchTraining
import Foundation
import XCTest

/// The report's pieces: nice axis ticks, the SVG chart's edge cases, HTML escaping, and the page
/// built from a run folder on disk (status, evaluation table, no external resource).
final class TrainingReportTests: XCTestCase {
    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "finch-report-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    // MARK: NiceScale

    func testTicksCoverTheDataAtNiceSteps() {
        let cases: [(Double, Double)] = [(0, 1), (0.3, 0.7), (-2.5, 13), (1e-6, 5e-5), (0.69, 0.6931), (100, 100_000), (-1e-3, -2e-4)]
        for (lo, hi) in cases {
            let s = NiceScale(minimum: lo, maximum: hi)
            XCTAssertLessThanOrEqual(s.lower, lo, "\(lo)…\(hi)")
            XCTAssertGreaterThanOrEqual(s.upper, hi * (hi > 0 ? 1 - 1e-9 : 1 + 1e-9), "\(lo)…\(hi)")
            let mantissa = s.step / pow(10, log10(s.step).rounded(.down))
            XCTAssertTrue([1, 2, 5].contains { abs(mantissa - $0) < 1e-9 }, "step \(s.step)")
            XCTAssertTrue((3...12).contains(s.ticks.count), "\(s.ticks)")
            let labels = s.ticks.map(s.label)
            XCTAssertEqual(Set(labels).count, labels.count, "distinct labels \(labels)")
        }
        XCTAssertEqual(NiceScale(minimum: 0, maximum: 1).ticks.map(NiceScale(minimum: 0, maximum: 1).label), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        let small = NiceScale(minimum: 0, maximum: 5e-5)
        XCTAssertEqual(small.label(2e-5), "2e-5")
        // Steps: integral ticks only.
        let steps = NiceScale(minimum: 1, maximum: 3, count: 6, integral: true)
        XCTAssertEqual(steps.step, 1)
        XCTAssertEqual(steps.ticks, [1, 2, 3])
        // Tight: the data's own range, nice ticks inside it.
        let run = NiceScale(minimum: 0, maximum: 16, count: 6, integral: true, tight: true)
        XCTAssertEqual([run.lower, run.upper], [0, 16])
        XCTAssertEqual(run.ticks, [0, 5, 10, 15])
    }

    func testEmptyRangeIsWidened() {
        let constant = NiceScale(minimum: 0.5, maximum: 0.5)
        XCTAssertLessThan(constant.lower, 0.5)
        XCTAssertGreaterThan(constant.upper, 0.5)
        let zero = NiceScale(minimum: 0, maximum: 0)
        XCTAssertEqual(zero.lower, -1)
        XCTAssertEqual(zero.upper, 1)
        let tiny = NiceScale(minimum: 1e-6, maximum: 1e-6)
        XCTAssertTrue(tiny.lower < 1e-6 && tiny.upper > 1e-6 && tiny.upper < 2e-6, "\(tiny)")
        let step = NiceScale(minimum: 5, maximum: 5, integral: true)
        XCTAssertTrue(step.lower <= 4 && step.upper >= 6 && step.step >= 1, "\(step)")
    }

    // MARK: SVGLineChart

    func polylines(_ svg: String) -> [String] {
        svg.components(separatedBy: "<polyline").dropFirst().map { String($0.prefix { $0 != ">" }) }
    }

    func testNonFiniteValuesLeaveGaps() {
        let chart = SVGLineChart(title: "loss", series: [
            .init(name: "train", points: [(1, 0.7), (2, 0.6), (3, .nan), (4, 0.5), (5, 0.45), (6, .infinity)], color: "#123456"),
        ])
        let svg = chart.render()
        XCTAssertEqual(polylines(svg).count, 2, "split at the NaN")
        XCTAssertEqual(polylines(svg).map { $0.components(separatedBy: ",").count - 1 }, [2, 2], "points per segment")
        XCTAssertFalse(svg.lowercased().contains("nan") || svg.contains("inf"), svg)
        // Hover titles for the finite points only.
        XCTAssertEqual(svg.components(separatedBy: "<title>train · step").count - 1, 4)
        XCTAssertTrue(svg.contains("<title>train · step 4: 0.5</title>"), svg)
    }

    func testOnePointIsAMarker() {
        let svg = SVGLineChart(title: "eval", series: [.init(name: "eval", points: [(10, 0.25)], color: "#f00", dashed: true)]).render()
        XCTAssertTrue(polylines(svg).isEmpty)
        XCTAssertTrue(svg.contains("<circle") && svg.contains("<title>eval · step 10: 0.25</title>"), svg)
        XCTAssertFalse(svg.lowercased().contains("nan"), svg)
        // The point sits inside the plot area.
        let cx = svg.components(separatedBy: "<circle cx=\"").dropFirst().compactMap { Double($0.prefix { $0 != "\"" }) }
        XCTAssertFalse(cx.isEmpty)
        for x in cx { XCTAssertTrue(x > SVGLineChart.margin.left && x < 560 - SVGLineChart.margin.right, "\(x)") }
    }

    func testConstantSeriesGetsARange() {
        let svg = SVGLineChart(title: "lr", series: [.init(name: "lr", points: (1...5).map { (Double($0), 5e-6) }, color: "#00f")]).render()
        let line = try? XCTUnwrap(polylines(svg).first)
        let ys = Set((line ?? "").components(separatedBy: " ").compactMap { $0.split(separator: ",").last.flatMap { Double($0.prefix { $0 != "\"" }) } })
        XCTAssertEqual(ys.count, 1, "a flat line")
        if let y = ys.first { XCTAssertTrue(y > SVGLineChart.margin.top && y < 300 - SVGLineChart.margin.bottom, "\(y)") }
        XCTAssertTrue(svg.contains(">5e-6</text>") || svg.contains(">5.0e-6</text>"), svg)
    }

    func testNoDataAndHostileNames() {
        let empty = SVGLineChart(title: "<b>x</b>", series: [.init(name: "a\"b", points: [(1, .nan)], color: "red")]).render()
        XCTAssertTrue(empty.contains("no data"))
        XCTAssertFalse(empty.contains("<b>"))
        XCTAssertTrue(empty.contains("&lt;b&gt;x&lt;/b&gt;") && empty.contains("a&quot;b"))
        XCTAssertTrue(SVGLineChart(title: "t", series: []).render().contains("no data"))
    }

    func testEscape() {
        XCTAssertEqual(HTML.escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
        XCTAssertEqual(HTML.escape("é ✓\n\t"), "é ✓\n\t")
        XCTAssertEqual(HTML.escape("a\u{0}b\u{1B}"), "a\u{FFFD}b\u{FFFD}")
    }

    // MARK: The page

    /// A DPO run folder as `finch dpo` leaves it, with the metrics given.
    func makeRun(_ dir: String, steps: Int, maxSteps: Int, status: TrainingRunRecord.Status, adapter: Bool) throws {
        var lines = ""
        for s in 1...steps {
            let x = Double(s)
            lines += "{\"step\":\(s),\"loss\":\(0.7 - 0.01 * x),\"grad_norm\":\(1 + x),\"learning_rate\":5e-06,\"rewards/chosen\":\(0.01 * x),"
                + "\"rewards/rejected\":\(-0.01 * x),\"rewards/accuracies\":\(s % 2 == 0 ? 0.75 : 0.5),\"rewards/margins\":\(0.02 * x),"
                + "\"logps/chosen\":-30.5,\"logps/rejected\":-35,\"num_tokens\":\(100 * s),\"epoch\":0.1,\"tokens_per_second\":250,\"pairs_per_second\":null}\n"
        }
        lines += "{\"step\":\(steps),\"eval_loss\":0.65,\"eval_rewards/accuracies\":0.6}\n"
        try lines.write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        try "{\"model_name_or_path\":\"smollm2-135m-instruct\",\"beta\":0.1,\"dataset\":\"<data>.jsonl\"}\n"
            .write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        var session = TrainingRunRecord.Session(started: Date(timeIntervalSince1970: 1_700_000_000), startStep: 0, host: "elsewhere", pid: 1)
        session.step = steps
        session.trainingSeconds = 20
        session.tokens = 100 * steps
        session.examples = 2 * steps
        session.peakResidentBytes = 400_000_000
        session.status = status
        session.updated = Date(timeIntervalSince1970: 1_700_000_030)
        let record = TrainingRunRecord(kind: "dpo", model: "smollm2-135m-instruct", dataset: "<data>.jsonl", maxSteps: maxSteps, unit: "pairs",
                                       datasetStatistics: .object([("train", .object([("pairs", .number("18")),
                                                                                     ("tokens", .object([("prompt", .object([("min", .number("3")), ("median", .number("7.5")), ("max", .number("12"))]))]))]))]),
                                       sessions: [session])
        try record.write(toFolder: dir)
        if adapter { try Data([1]).write(to: URL(fileURLWithPath: dir + "/" + PEFTAdapterFolder.weightsFile)) }
    }

    func testPageFromARunFolder() throws {
        let dir = try temporaryDirectory()
        try makeRun(dir, steps: 6, maxSteps: 6, status: .finished, adapter: true)
        let report = try TrainingReport(runFolder: dir)
        XCTAssertEqual(report.kind, .dpo)
        XCTAssertEqual(report.status, .finished)
        XCTAssertEqual(report.trainingRecords.count, 6)
        XCTAssertEqual(report.evaluationRecords.count, 1)
        XCTAssertTrue(report.trainingRecords[0]["pairs_per_second"]?.isNaN ?? false, "null is NaN")
        let html = report.html()
        XCTAssertFalse(html.contains("<data>"), "config and dataset escaped")
        XCTAssertTrue(html.contains("&lt;data&gt;.jsonl"))
        XCTAssertTrue(html.contains("<th>train › tokens › prompt</th><td>3 / 7.5 / 12</td>"), "lengths as min / median / max")
        XCTAssertTrue(html.contains("<th>tokens per second</th><td>30</td>"), "600 tokens / 20 s")
        XCTAssertTrue(html.contains("<th>pairs per second</th><td>0.60</td>"))
        XCTAssertTrue(html.contains("<th>peak memory (resident, VmHWM)</th><td>400 MB</td>"))
        XCTAssertTrue(html.contains("<div class=\"v\">75.0%</div><div class=\"k\">reward accuracy</div>"))
        XCTAssertTrue(html.contains("Content-Security-Policy"))
        XCTAssertFalse(html.contains("Evaluation on"))
        XCTAssertNil(html.range(of: #"(?i)(src|href)\s*="#, options: .regularExpression))

        // evaluation.json adds the table and samples, escaped.
        let evaluation = EvaluationSummary(split: "test", metrics: [.init(name: "preference accuracy", before: 0.41, after: 0.83, format: .percent),
                                                                   .init(name: "margin", before: 0.5, after: 0.25)],
                                           samples: [.init(prompt: "Say <hi>", before: "</pre><script>x</script>", after: "ok")])
        try evaluation.write(toFolder: dir)
        XCTAssertEqual(try EvaluationSummary(contentsOf: dir + "/evaluation.json"), evaluation)
        let page = try TrainingReport(runFolder: dir).html()
        XCTAssertTrue(page.contains("<td class=\"up\">+42.0 points</td>"), page)
        XCTAssertTrue(page.contains("<td class=\"down\">−0.25</td>"), page)
        XCTAssertTrue(page.contains("Say &lt;hi&gt;") && page.contains("&lt;/pre&gt;&lt;script&gt;"))
        XCTAssertTrue(page.contains("<summary>Sample generations: 1 prompts, 1 with a changed reply</summary>"), page)
        XCTAssertFalse(page.contains("<script"))
        let written = try TrainingReport.write(runFolder: dir)
        XCTAssertEqual(written, dir + "/report.html")
        XCTAssertTrue(try String(contentsOfFile: written, encoding: .utf8).contains("preference accuracy"))
    }

    func testStatusAndDiscovery() throws {
        let root = try temporaryDirectory()
        let (a, b, c) = (root + "/a", root + "/nested/b", root + "/nested/c")
        for d in [a, b, c] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try makeRun(a, steps: 3, maxSteps: 10, status: .running, adapter: false)
        XCTAssertEqual(try TrainingReport(runFolder: a).status, .interrupted, "a dead process on another host, no checkpoint")
        try makeRun(b, steps: 3, maxSteps: 10, status: .interrupted, adapter: false)
        try FileManager.default.createDirectory(atPath: b + "/checkpoint-2", withIntermediateDirectories: true)
        try "{\"global_step\":2,\"max_steps\":10}".write(toFile: b + "/checkpoint-2/trainer_state.json", atomically: true, encoding: .utf8)
        XCTAssertEqual(try TrainingReport(runFolder: b).status, .resumable)
        try makeRun(c, steps: 3, maxSteps: 10, status: .failed, adapter: false)
        XCTAssertEqual(try TrainingReport(runFolder: c).status, .failed)
        XCTAssertEqual(TrainingReport.runFolders(under: root), [a, b, c], "checkpoints are not runs")
        XCTAssertEqual(TrainingReport.runFolders(under: b), [b])
        // No run.json: judged by the files.
        try FileManager.default.removeItem(atPath: a + "/run.json")
        XCTAssertEqual(try TrainingReport(runFolder: a).status, .interrupted)
        try Data([1]).write(to: URL(fileURLWithPath: a + "/" + PEFTAdapterFolder.weightsFile))
        XCTAssertEqual(try TrainingReport(runFolder: a).status, .finished)
    }
}
