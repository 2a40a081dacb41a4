import ArgumentParser
import Foundation
import ZImageHub
import ZImagePipeline
import ZImageTokenizer

/// `zimage tokenize`: the token ids and pieces of a prompt, and its count against the 512 limit.
public struct TokenizeCommand: ParsableCommand {
    /// The subcommand's name, abstract and help text.
    public static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Show how a prompt is split into tokens, and whether it fits the 512-token limit.",
        discussion: """
            With --template the prompt is wrapped in the chat template first, exactly as the text encoder \
            sees it; the reference keeps the first 512 tokens of that and drops the rest.
            """
    )

    @Option(help: "Model directory or cached repository id (its tokenizer/tokenizer.json is used).")
    var model: String

    @Flag(help: "Apply the prompt template first (what generation does).")
    var template = false

    @Flag(help: "Print {\"ids\": [...], \"tokens\": [...]} (plus count, limit and truncated).")
    var json = false

    @Option(help: "Read the text from a file ('-' for standard input) instead of the argument.")
    var file: String?

    @Argument(help: "The text to tokenize.")
    var text: String?

    /// An empty command; ArgumentParser fills in the options.
    public init() {}

    /// Checks the options before `run` (ArgumentParser calls it first).
    public func validate() throws {
        if (text == nil) == (file == nil) { throw ValidationError("give the text as an argument or with --file, not both") }
    }

    /// Runs the command.
    public func run() throws {
        let tokenizer = try BPETokenizer(path: (ModelLocator.resolve(model) as NSString)
            .appendingPathComponent("tokenizer/tokenizer.json"))
        let input = try readText()
        if input.isEmpty && !template {
            throw CLIError("empty prompt: nothing to tokenize (with --template an empty prompt is the 8-token template)")
        }
        let limit = PromptTemplate.maximumLength
        let ids: [Int32], fullCount: Int
        if template {
            let tokenized = TokenizedPrompt(prompt: input, tokenizer: tokenizer)
            (ids, fullCount) = (tokenized.ids, tokenized.fullLength)
        } else {
            ids = tokenizer.encode(input)
            fullCount = ids.count
        }
        let truncated = fullCount > limit
        if json {
            let object: [String: Any] = [
                "ids": ids.map(Int.init), "tokens": tokenizer.tokens(ids), "count": fullCount, "limit": limit,
                "truncated": truncated,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for id in ids {
            print(String(format: "%7d  ", Int(id)) + tokenizer.decode([id]).debugDescription)
        }
        let what = template ? "tokens with the template" : "tokens"
        if truncated {
            print("\(fullCount) \(what): over the \(limit)-token limit; only the first \(limit) reach the model "
                + "(\(fullCount - limit) dropped)")
        } else {
            print("\(fullCount) \(what) of \(limit)")
        }
    }

    private func readText() throws -> String {
        guard let file else { return text ?? "" }
        let bytes: [UInt8]
        if file == "-" {
            bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("\(file): cannot read") }
            bytes = Array(data)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let offset = Self.firstInvalidUTF8Offset(bytes)
            throw TokenizerError.invalidUTF8(byteOffset: offset)
        }
        return text
    }

    static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int {
        var decoder = UTF8(), iterator = bytes.makeIterator(), offset = 0
        while case .scalarValue(let scalar) = decoder.decode(&iterator) { offset += UTF8.width(scalar) }
        return offset
    }
}
