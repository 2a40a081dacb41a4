import Foundation
import Testing
import ZImageCPU
import ZImageTensor
import ZImageTokenizer
import ZImageWeights
import ZImageTestSupport

/// The tiny fixture tokenizer (same kind as Qwen's) against the ids HF `tokenizers` produced for it.
@Suite struct TinyTokenizerTests {
    let tokenizer: BPETokenizer
    let goldens: SafetensorsFile

    init() throws {
        tokenizer = try BPETokenizer(path: Fixtures.path("tiny-zimage/tokenizer/tokenizer.json"))
        goldens = try SafetensorsFile(path: Fixtures.path("stages/tokens.safetensors"))
    }

    func ids(_ name: String) throws -> [Int32] {
        try goldens.tensor(name, on: CPUBackend()).toFloats().map { Int32($0) }
    }

    @Test func matchesReferenceOnEveryCase() throws {
        let data = try #require(goldens.metadata["tokenizer_cases"]?.data(using: .utf8))
        let cases = try #require(try JSONSerialization.jsonObject(with: data) as? [String])
        #expect(cases.count == 20)
        for (index, text) in cases.enumerated() {
            let name = String(format: "case%02d.ids", index)
            let expected = goldens.info(name).map { _ in try? ids(name) } ?? nil
            #expect(tokenizer.encode(text) == (expected ?? []), "case \(index): \(text.debugDescription)")
        }
    }

    @Test func addedTokensAreMatchedBeforeBPE() throws {
        let ids = tokenizer.encode("a<|endoftext|>b")
        #expect(ids.contains(640))
        #expect(tokenizer.specialTokenIDs == [640, 641, 642])
        #expect(tokenizer.id(of: "<think>") == 643)
        #expect(tokenizer.vocabularySize == 645)
    }

    @Test func decodeRoundTrips() {
        for text in ["Hello world", "日本語のテキスト 🦊", "<|im_start|>user\nhi<|im_end|>", "  tabs\tand\nlines  "] {
            #expect(tokenizer.decode(tokenizer.encode(text)) == text)
        }
        #expect(tokenizer.decode(tokenizer.encode("<|im_start|>x"), skipSpecialTokens: true) == "x")
    }

    @Test func invalidUTF8IsRefused() throws {
        #expect(throws: TokenizerError.invalidUTF8(byteOffset: 2)) {
            try tokenizer.encode(utf8: [0x61, 0x62, 0xFF, 0x63])
        }
        #expect(throws: TokenizerError.invalidUTF8(byteOffset: 1)) { try tokenizer.encode(utf8: [0x61, 0xE6, 0x97]) }
        #expect(try tokenizer.encode(utf8: Array("Hello".utf8)) == tokenizer.encode("Hello"))
    }

    @Test func otherKindsOfTokenizerAreRefused() throws {
        let wordPiece = #"{"model": {"type": "WordPiece", "vocab": {}}, "normalizer": null, "pre_tokenizer": null}"#
        #expect {
            try BPETokenizer(data: Data(wordPiece.utf8), source: "wp.json")
        } throws: { error in
            guard case TokenizerError.unsupported(_, let detail) = error else { return false }
            return detail.contains("WordPiece")
        }
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
            Fixtures.path("tiny-zimage/tokenizer/tokenizer.json")))) as? [String: Any])
        json["pre_tokenizer"] = ["type": "Whitespace"]
        #expect(throws: TokenizerError.self) {
            try BPETokenizer(data: JSONSerialization.data(withJSONObject: json), source: "ws.json")
        }
        #expect(throws: TokenizerError.malformed(path: "x.json", detail: "invalid JSON")) {
            try BPETokenizer(data: Data("{".utf8), source: "x.json")
        }
        #expect(throws: TokenizerError.fileNotFound(path: "/nope/tokenizer.json")) {
            try BPETokenizer(path: "/nope/tokenizer.json")
        }
    }
}
