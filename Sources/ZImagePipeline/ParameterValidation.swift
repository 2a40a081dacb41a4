/// A field of `GenerationParameters`, so that every entry point can say what it calls it.
public enum GenerationField: String, Sendable, CaseIterable {
    case prompt, negativePrompt, width, height, steps, guidanceScale, cfgNormalization, cfgTruncation, seed, batchSize
}

/// What one caller (the CLI, the native API, A1111, OpenAI, the pipeline itself) calls each field
/// of `GenerationParameters`: the name put in an error's `field`, and a prefix for its message
/// when several fields share one name (OpenAI's `size` holds width and height).
public struct FieldNames: Sendable {
    public struct Name: Sendable, Equatable {
        public var field: String
        public var subject: String
        public init(_ field: String, subject: String? = nil) { (self.field, self.subject) = (field, subject ?? field) }
    }
    public var names: [GenerationField: Name]

    public init(_ names: [GenerationField: Name]) { self.names = names }

    public subscript(_ field: GenerationField) -> Name { names[field] ?? Name(field.rawValue) }

    /// The pipeline's own names (`GenerationError.invalidParameter`).
    public static let pipeline = FieldNames([
        .negativePrompt: Name("negative_prompt"), .guidanceScale: Name("guidance"),
        .cfgNormalization: Name("cfg_normalization"), .cfgTruncation: Name("cfg_truncation"), .batchSize: Name("batch"),
    ])
    /// `zimage generate`'s flags.
    public static let commandLine = FieldNames([
        .prompt: Name("--prompt"), .negativePrompt: Name("--negative-prompt"), .width: Name("--width"),
        .height: Name("--height"), .steps: Name("--steps"), .guidanceScale: Name("--guidance"),
        .cfgNormalization: Name("--cfg-normalization"), .cfgTruncation: Name("--cfg-truncation"),
        .seed: Name("--seed"), .batchSize: Name("--batch"),
    ])
    /// The native API's JSON fields.
    public static let native = FieldNames([
        .negativePrompt: Name("negative_prompt"), .guidanceScale: Name("guidance_scale"),
        .cfgNormalization: Name("cfg_normalization"), .cfgTruncation: Name("cfg_truncation"),
        .batchSize: Name("batch_size"),
    ])
    /// AUTOMATIC1111's `txt2img` fields (the batch is `batch_size` × `n_iter`, checked by the caller first).
    public static let a1111 = FieldNames([
        .negativePrompt: Name("negative_prompt"), .guidanceScale: Name("cfg_scale"), .batchSize: Name("batch_size"),
    ])
    /// OpenAI's `images/generations` fields: width and height are both `size`.
    public static let openAI = FieldNames([
        .width: Name("size", subject: "size: width"), .height: Name("size", subject: "size: height"),
        .batchSize: Name("n"),
    ])
}

/// A refused parameter: the caller's field name and a sentence that says why, with the limit.
public struct ParameterError: Error, Equatable, CustomStringConvertible {
    /// The caller's name of the field.
    public var field: String
    /// What the message is about ("width", "size: width").
    public var subject: String
    /// Why, with the limit ("1000 is not a multiple of 16 (try 992 or 1008)").
    public var reason: String
    public init(field: String, subject: String? = nil, reason: String) {
        (self.field, self.subject, self.reason) = (field, subject ?? field, reason)
    }
    /// "width 1000 is not a multiple of 16 (try 992 or 1008)".
    public var message: String { "\(subject) \(reason)" }
    public var description: String { message }
}

/// The limits a generation must keep: the engine's (what the pipeline can do) or narrower ones
/// (what a server allows). Prompt limits are optional; the engine itself has none.
public struct GenerationLimits: Sendable, Equatable {
    public var size: ClosedRange<Int> = 64...4096
    public var sizeMultiple = 16
    public var steps: ClosedRange<Int> = 1...100
    public var batch: ClosedRange<Int> = 1...64
    public var guidance: ClosedRange<Float> = 0...30
    /// Largest prompt (and negative prompt) in grapheme clusters, in UTF-8 bytes and in tokens.
    public var promptCharacters: Int?
    public var promptBytes: Int?
    public var promptTokens: Int?

    public init() {}

    /// What the pipeline can do.
    public static let engine = GenerationLimits()

    /// `zimage serve`'s defaults: 2048² at most, 50 steps, 8 images, prompts of 10,000
    /// characters, 40,000 bytes and 8,192 tokens.
    public static let server: GenerationLimits = {
        var limits = GenerationLimits()
        (limits.size, limits.steps, limits.batch) = (64...2048, 1...50, 1...8)
        (limits.promptCharacters, limits.promptBytes, limits.promptTokens) = (10_000, 40_000, 8_192)
        return limits
    }()
}

extension GenerationParameters {
    /// Checks every field against `limits`; the error names the field as `names` says and quotes
    /// the limit. `countTokens` (the engine's tokenizer) enables the token limit.
    /// Prompts are measured by bytes first, so counting characters or tokens stays cheap.
    public func validate(limits: GenerationLimits, names: FieldNames,
                         countTokens: ((String) -> Int)? = nil) throws(ParameterError) {
        func refuse(_ field: GenerationField, _ reason: String) -> ParameterError {
            let name = names[field]
            return ParameterError(field: name.field, subject: name.subject, reason: reason)
        }
        for (field, text) in [(GenerationField.prompt, prompt), (.negativePrompt, negativePrompt)] {
            // The PNG's text chunk (and most tools) cannot hold NUL.
            if text.utf8.contains(0) { throw refuse(field, "contains a NUL character (U+0000)") }
            if let bytes = limits.promptBytes, text.utf8.count > bytes {
                throw refuse(field, "is longer than \(bytes) bytes of UTF-8")
            }
            if let characters = limits.promptCharacters, text.count > characters {
                throw refuse(field, "is longer than \(characters) characters")
            }
            if let tokens = limits.promptTokens, let countTokens, countTokens(text) > tokens {
                throw refuse(field, "is longer than \(tokens) tokens")
            }
        }
        for (field, value) in [(GenerationField.width, width), (.height, height)] {
            guard limits.size.contains(value) else {
                throw refuse(field, "\(value) is outside \(limits.size.lowerBound)...\(limits.size.upperBound)")
            }
            let multiple = limits.sizeMultiple
            guard value % multiple == 0 else {
                throw refuse(field, "\(value) is not a multiple of \(multiple) (try \(value / multiple * multiple) or "
                    + "\((value / multiple + 1) * multiple))")
            }
        }
        guard limits.steps.contains(steps) else {
            throw refuse(.steps, "\(steps) is outside \(limits.steps.lowerBound)...\(limits.steps.upperBound)")
        }
        guard limits.batch.contains(batchSize) else {
            throw refuse(.batchSize, "\(batchSize) is outside \(limits.batch.lowerBound)...\(limits.batch.upperBound)")
        }
        guard guidanceScale.isFinite, limits.guidance.contains(guidanceScale) else {
            throw refuse(.guidanceScale, "\(guidanceScale) is outside "
                + "\(Infotext.format(limits.guidance.lowerBound))...\(Infotext.format(limits.guidance.upperBound))")
        }
        guard cfgNormalization.isFinite, cfgNormalization >= 0 else {
            throw refuse(.cfgNormalization, "must be 0 (off) or positive")
        }
        guard cfgTruncation.isFinite, (0...1).contains(cfgTruncation) else {
            throw refuse(.cfgTruncation, "must be between 0 and 1")
        }
        if let seed, seed > Seed.largest {
            throw refuse(.seed, "\(seed) is larger than 2^63 - 1")
        }
    }
}
