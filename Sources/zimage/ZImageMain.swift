import ArgumentParser
import ZImageCLI

/// Entry point: parses the command line and runs the chosen subcommand (async ones included).
@main
struct ZImageMain {
    static func main() async {
        do {
            var command = try ZImageCommand.parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            ZImageCommand.exit(withError: error)
        }
    }
}
