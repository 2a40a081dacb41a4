import ArgumentParser
import Foundation
import ZImageModels
import ZImagePipeline
import ZImageServer
import ZImageTensor

/// `--lora FILE[:STRENGTH]` (repeatable) and `--lora-dir`, shared by `generate` and `loras`.
struct LoRAOptions: ParsableArguments {
    @Option(name: .customLong("lora"), help: ArgumentHelp(
        "A LoRA to merge into the model: a .safetensors path or a name from --lora-dir, with an optional strength "
            + "(default 1), e.g. --lora detail.safetensors:0.8. Repeatable. <lora:name:0.8> in the prompt works too.",
        valueName: "file[:strength]"))
    var loras: [String] = []

    @Option(help: "The LoRA folder (default: loras/ in the server's data directory, ~/.local/share/zimage/loras).")
    var loraDir: String?

    var library: LoRALibrary {
        LoRALibrary(directory: loraDir ?? (ServerOptions.defaultDataDirectory() as NSString).appendingPathComponent("loras"))
    }

    /// The LoRAs of the flags and then the prompt's tags, read and converted (errors name the file and key).
    func load(prompt: String) throws -> [WeightedLoRA] {
        let tags = PromptLoRAs.parse(prompt)
        if let bad = tags.invalid.first { throw CLIError("--prompt: \(bad) has a strength that is not a number") }
        let references = loras.map(LoRAReference.init(argument:)) + tags.loras
        let library = self.library
        return try references.map { reference in
            guard let path = library.path(for: reference.name, allowPaths: true) else {
                throw CLIError("--lora \(reference.name): no such file, and no LoRA of that name in \(library.directory)")
            }
            do {
                return try WeightedLoRA(LoRAFile(path: path), strength: reference.strength)
            } catch {
                throw CLIError("--lora \(reference.name): \(error)")
            }
        }
    }
}

/// `zimage loras`: the LoRA folder's files, with their short hash and what they change.
public struct LoRAsCommand: ParsableCommand {
    /// The subcommand's name, abstract and help text.
    public static let configuration = CommandConfiguration(
        commandName: "loras",
        abstract: "List the LoRAs in the LoRA folder (name, short hash, modules changed, size).")

    @OptionGroup var options: LoRAOptions

    /// An empty command; ArgumentParser fills in the options.
    public init() {}

    /// Runs the command.
    public func run() throws {
        let library = options.library
        let entries = library.entries()
        guard !entries.isEmpty else {
            print("no LoRAs in \(library.directory) (put .safetensors files there)")
            return
        }
        for entry in entries {
            do {
                let lora = try LoRAFile(path: entry.path)
                print("\(entry.name)\t\(lora.shortHash)\t\(lora.modules.count) modules\t"
                    + ByteCount.format(entry.byteCount))
            } catch {
                print("\(entry.name)\tunusable: \(error)")
            }
        }
    }
}
