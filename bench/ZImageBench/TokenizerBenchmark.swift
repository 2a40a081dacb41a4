import Foundation
import ZImageTokenizer

/// Tokenizes the ~1 MB text that bench/tokenizer_hf.py writes, the same ways it times HF
/// `tokenizers`: load, the whole text as one string, and line by line (cold cache first, then warm).
enum TokenizerBenchmark {
    static func run(tokenizerPath: String, textPath: String, repeats: Int) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: textPath) else {
            throw BenchError("cannot read \(textPath)")
        }
        let text = String(decoding: data, as: UTF8.self)
        // Split on the byte 0x0A as Python's str.split("\n") does (a Swift Character split would keep
        // "\r\n" together).
        var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() }
        func seconds(_ body: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        var tokenizer: BPETokenizer?
        let load = try seconds { tokenizer = try BPETokenizer(path: tokenizerPath) }
        guard let tokenizer else { throw BenchError("no tokenizer") }
        var count = 0
        let oneStringCold = seconds { count = tokenizer.encode(text).count }
        let oneStringWarm = (0..<repeats).map { _ in seconds { _ = tokenizer.encode(text) } }.sorted()
        let fresh = try BPETokenizer(path: tokenizerPath)
        var lineCount = 0
        let loopCold = seconds { lineCount = lines.reduce(0) { $0 + fresh.encode($1).count } }
        let loopWarm = (0..<repeats).map { _ in seconds { for line in lines { _ = fresh.encode(line) } } }.sorted()
        return [
            "implementation": "zimage", "bytes": data.count, "lines": lines.count, "tokens_one_string": count,
            "tokens_loop": lineCount, "load_s": load,
            "one_string_cold_s": oneStringCold, "one_string_warm_median_s": oneStringWarm[oneStringWarm.count / 2],
            "loop_cold_s": loopCold, "loop_warm_median_s": loopWarm[loopWarm.count / 2],
        ]
    }
}
