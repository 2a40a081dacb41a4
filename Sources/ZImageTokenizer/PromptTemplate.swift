/// The chat template the reference wraps each prompt in (diffusers 0.42.1 `ZImagePipeline`'s
/// prompt encoding): one user message rendered with `add_generation_prompt=True,
/// enable_thinking=True`, which for Qwen3 adds no `<think>` block.
public enum PromptTemplate {
    /// `<|im_start|>user\n` + prompt + `<|im_end|>\n<|im_start|>assistant\n`.
    public static func render(_ prompt: String) -> String {
        "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n"
    }

    /// The reference's `max_sequence_length`.
    public static let maximumLength = 512
}

/// A templated prompt as token ids, cut to the limit as the reference cuts it.
public struct TokenizedPrompt: Equatable, Sendable {
    /// The ids the text encoder sees (at most `PromptTemplate.maximumLength`).
    public var ids: [Int32]
    /// Ids of the whole templated prompt before truncation.
    public var fullLength: Int
    /// Whether the limit cut the prompt (and with it the template's tail, as the reference does).
    public var truncated: Bool { fullLength > ids.count }

    /// Tokenizes `PromptTemplate.render(prompt)` and keeps the first `maximumLength` ids
    /// (the reference truncates the whole rendered string, template tail included).
    public init(prompt: String, tokenizer: BPETokenizer, maximumLength: Int = PromptTemplate.maximumLength) {
        let all = tokenizer.encode(PromptTemplate.render(prompt))
        fullLength = all.count
        ids = Array(all.prefix(maximumLength))
    }
}
