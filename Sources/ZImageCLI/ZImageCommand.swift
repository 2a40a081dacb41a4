import ArgumentParser
import ZImagePipeline

/// The `zimage` command line: `generate`, `serve`, `inspect`, `tokenize`, `pull`, `devices`, `loras` and `advise`.
@available(macOS 10.15, *)
public struct ZImageCommand: AsyncParsableCommand {
    /// The subcommand's name, abstract and help text.
    public static let configuration = CommandConfiguration(
        commandName: "zimage",
        abstract: "Z-Image-Turbo text-to-image engine.",
        version: ZImagePipeline.version,
        subcommands: [GenerateCommand.self, ServeCommand.self, InspectCommand.self, TokenizeCommand.self, PullCommand.self,
                      DevicesCommand.self, LoRAsCommand.self, AdviseCommand.self]
    )

    /// An empty command; ArgumentParser fills in the options.
    public init() {}
}
