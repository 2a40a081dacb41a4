import ArgumentParser

/// The `zimage` command line: `inspect` and `devices` (generation and serving come with later work).
public struct ZImageCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "zimage",
        abstract: "Z-Image-Turbo text-to-image engine.",
        subcommands: [GenerateCommand.self, InspectCommand.self, TokenizeCommand.self, DevicesCommand.self]
    )

    public init() {}
}
