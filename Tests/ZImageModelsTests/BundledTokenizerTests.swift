import Foundation
import Testing
import ZImagePipeline
import ZImageTokenizer

/// The Qwen tokenizer zimage carries for split files (`BundledTokenizer`): found beside the
/// binaries, decompressed, verified by SHA-256; a damaged resource is a clear error.
@Suite struct BundledTokenizerTests {
    @Test func bundledTokenizerLoadsAndEncodesAsQwen() throws {
        let path = try #require(BundledTokenizer.resourcePath)
        let tokenizer = try BundledTokenizer.load(path: path)
        // `<|im_start|>` is Qwen's 151644, "user" 872, "\n" 198 (the chat template's opening).
        #expect(tokenizer.encode("<|im_start|>user\n") == [151644, 872, 198])
        // The same file as the one the tokenizer tests fetch and verify, when it is there.
        if let reference = ProcessInfo.processInfo.environment["ZIMAGE_QWEN_TOKENIZER"] {
            #expect(try BundledTokenizer.data(path: path) == Data(contentsOf: URL(fileURLWithPath: reference)))
        }
    }

    @Test func damagedResourcesAreRefused() throws {
        let folder = NSTemporaryDirectory() + "zimage-bundled-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let good = try Data(contentsOf: URL(fileURLWithPath: try #require(BundledTokenizer.resourcePath)))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: folder + "/cut.gz"))
        #expect { try BundledTokenizer.data(path: folder + "/cut.gz") } throws: { error in
            String(describing: error).contains("does not decompress")
        }
        // A valid gzip stream of other bytes: decompresses, fails the hash.
        let other = Data([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x4b, 0x04, 0x00,
                          0x43, 0xbe, 0xb7, 0xe8, 0x01, 0x00, 0x00, 0x00])   // gzip of "a"
        try other.write(to: URL(fileURLWithPath: folder + "/other.gz"))
        #expect { try BundledTokenizer.data(path: folder + "/other.gz") } throws: { error in
            String(describing: error).contains("SHA-256") && String(describing: error).contains(BundledTokenizer.sha256)
        }
        #expect { try BundledTokenizer.data(path: folder + "/missing.gz") } throws: { error in
            String(describing: error).contains("--tokenizer DIR")
        }
    }
}
