import ArgumentParser
import FinchFormats

/// The `finch` command: preference-tune (DPO) and serve small language models.
@main
struct Finch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finch",
        abstract: "Preference-tune (DPO) and serve small language models, natively in Swift.",
        discussion: """
            MODEL arguments take a GGUF file, a Hugging Face model folder (config.json + safetensors), \
            or the name of a known model (\(KnownModel.all.map(\.name).joined(separator: ", "))), \
            which is fetched into the cache on first use.
            Cache: $FINCH_CACHE_DIR, else $XDG_CACHE_HOME/finch, else ~/.cache/finch.
            """,
        version: "0.1.0",
        subcommands: [Quickstart.self, Pull.self, Inspect.self, Tokenize.self, Generate.self, Chat.self, DPO.self, SFT.self, Merge.self, Export.self, Report.self, Runs.self, Serve.self,
                      QuickstartData.self]
    )
}
