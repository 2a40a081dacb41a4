import Foundation
import ZImagePipeline

// zimage benchmarks (not tests): `ZImageBench cpu-ops [--threads N] [--repeats N]` and
// `ZImageBench cpu-step --model DIR`, `ZImageBench cuda-check [--nvrtc PATH]`. Each prints one JSON object.
let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

func emit(_ object: [String: Any]) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}

do {
    switch arguments.first {
    case "cpu-ops":
        let threads = option("--threads").flatMap(Int.init) ?? ProcessInfo.processInfo.activeProcessorCount
        let rows = try CPUOpsBenchmark.run(threads: threads, repeats: option("--repeats").flatMap(Int.init) ?? 5)
        emit(["implementation": "zimage", "threads": threads, "cases": rows])
    case "cpu-step":
        guard let directory = option("--model") else { throw BenchError("cpu-step needs --model DIR") }
        let threads = option("--threads").flatMap(Int.init) ?? ProcessInfo.processInfo.activeProcessorCount
        emit(try CPUStepBenchmark.run(directory: directory, threads: threads,
                                      repeats: option("--repeats").flatMap(Int.init) ?? 3))
    case "tokenize":
        guard let tokenizer = option("--tokenizer"), let text = option("--text") else {
            throw BenchError("tokenize needs --tokenizer PATH --text PATH")
        }
        emit(try TokenizerBenchmark.run(tokenizerPath: tokenizer, textPath: text,
                                        repeats: option("--repeats").flatMap(Int.init) ?? 5))
    case "cuda-check":
        let report = try CUDACheck.run(nvrtcPath: option("--nvrtc"), tinyModelPath: option("--tiny-model"))
        emit(report)
        if report["all_passed"] as? Bool != true { exit(1) }
    case "pipeline":
        guard let model = option("--model") else { throw BenchError("pipeline needs --model DIR") }
        guard let precision = Precision(rawValue: option("--precision") ?? "bf16"), precision != .float32 else {
            throw BenchError("--precision is bf16, fp16 or fp8")
        }
        let report = try PipelineBenchmark.run(model: model, repeats: option("--repeats").flatMap(Int.init) ?? 3,
                                               profile: arguments.contains("--profile"), precision: precision)
        if let profile = report["profile"] as? String { FileHandle.standardError.write(Data((profile + "\n").utf8)) }
        emit(report)
    default:
        FileHandle.standardError.write(Data("usage: ZImageBench cpu-ops [--threads N] [--repeats N] | cpu-step --model DIR [--threads N] [--repeats N] | tokenize --tokenizer PATH --text PATH | cuda-check [--nvrtc PATH] | pipeline --model DIR [--precision bf16|fp16|fp8] [--repeats N] [--profile]\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
