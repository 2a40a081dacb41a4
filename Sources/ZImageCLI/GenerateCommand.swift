import ArgumentParser
import Foundation
import ZImageCPU
import ZImageCUDA
import ZImageHub
import ZImagePipeline
import ZImageTensor

/// `zimage generate`: prompt → PNG files.
public struct GenerateCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate images from a prompt and write them as PNG files.",
        discussion: """
            Without --model the built-in demo model is used: a tiny Z-Image with random weights that runs in \
            seconds and draws abstract images. Point --model at a download of Tongyi-MAI/Z-Image-Turbo \
            (diffusers layout) for real images. Image i of a batch uses seed + i, so any image can be made \
            again alone. Files are named NNNNN-SEED.png, so sorting by name gives generation order.
            """
    )

    @Option(help: "Model directory (diffusers layout of Tongyi-MAI/Z-Image-Turbo), or a repository id in the Hugging Face cache (see `zimage pull`). Default: the demo model.")
    var model: String?

    @OptionGroup var split: SplitFileOptions

    @Option(help: "What to draw.")
    var prompt: String

    @Option(help: "What to avoid (used only with --guidance above 0).")
    var negativePrompt: String = ""

    @Option(help: "Width in pixels, a multiple of 16 (64 to 4096).")
    var width: Int = 1024

    @Option(help: "Height in pixels, a multiple of 16 (64 to 4096).")
    var height: Int = 1024

    @Option(help: "Denoising steps (model evaluations). Z-Image-Turbo is made for 8.")
    var steps: Int = 8

    @Option(help: "Classifier-free guidance scale; 0 (Turbo's setting) turns it off.")
    var guidance: Float = 0

    @Option(help: "Seed of the first image; -1 picks a random one (always printed).")
    var seed: Int64 = -1

    @Option(help: "Number of images (seeds seed, seed+1, ...).")
    var batch: Int = 1

    @Option(help: "Folder for the PNG files (created if missing).")
    var output: String = "outputs"

    @Option(help: "cpu, cuda, cuda:N or auto.")
    var device: String = "auto"

    @Option(help: "fp32, bf16 or fp16; auto is fp32 on the CPU and bf16 on a GPU.")
    var precision: String = "auto"

    @Flag(help: "Decode the image in tiles (less memory for large images).")
    var tiledDecode = false

    @Option(help: "CPU threads (default: all cores).")
    var threads: Int?

    public init() {}

    public func validate() throws {
        guard seed >= -1 else { throw ValidationError("--seed must be -1 (random) or a non-negative integer") }
        guard ["auto", "fp32", "bf16", "fp16"].contains(precision) else {
            throw ValidationError("--precision must be fp32, bf16, fp16 or auto")
        }
        var parameters = self.parameters
        parameters.seed = parameters.seed ?? 0
        do { try parameters.validate() } catch let error as GenerationError { throw ValidationError("\(error)") }
    }

    var parameters: GenerationParameters {
        var p = GenerationParameters(prompt: prompt)
        p.negativePrompt = negativePrompt
        (p.width, p.height, p.steps, p.guidanceScale, p.batchSize) = (width, height, steps, guidance, batch)
        p.seed = seed >= 0 ? UInt64(seed) : nil
        p.tiledDecode = tiledDecode
        return p
    }

    public func run() throws {
        let started = Date()
        let interactive = isatty(STDERR_FILENO) == 1
        let backend = try DeviceChoice.backend(device, threads: threads)
        let chosenPrecision: Precision = precision == "auto"
            ? (backend.device == .cpu ? .float32 : .bfloat16) : Precision(rawValue: precision) ?? .float32
        let pipeline: ZImagePipeline
        if let named = try ModelSource.pipeline(model: model, split: split, backend: backend, precision: chosenPrecision) {
            pipeline = named
        } else {
            pipeline = try ZImagePipeline(modelDirectory: DemoModel.ensure(), backend: backend, precision: chosenPrecision)
            note("using the demo model (random weights: abstract images); --model DIR selects real weights")
        }
        let loaded = Date()
        var parameters = self.parameters
        if parameters.seed == nil { parameters.seed = UInt64.random(in: 0...UInt64(UInt32.max)) }
        if let firstSeed = parameters.seed { note("seed \(firstSeed)") }
        if TokenizedPrompt(prompt: prompt, tokenizer: pipeline.tokenizer).truncated {
            note("warning: the prompt is longer than 512 tokens with its template; the rest is ignored "
                + "(see `zimage tokenize --template`)")
        }
        let bar = ProgressBar(enabled: interactive, total: parameters.steps * parameters.batchSize)
        let images = try pipeline.generate(parameters) { event in
            if event.stage == .denoising { bar.advance(image: event.image, batch: parameters.batchSize) }
            return true
        }
        bar.finish()
        let generated = Date()
        // ZIMAGE_PROFILE=1: the CUDA backend's per-stage, per-op table.
        if let profile = pipeline.backend.profileReport() { note(profile) }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        var number = OutputNaming.nextNumber(in: output)
        for image in images {
            let path = (output as NSString).appendingPathComponent(String(format: "%05d-%llu.png", number, image.seed))
            try PNGEncoder.write(image.image, text: [("parameters", image.infotext)], to: path)
            print(path)
            number += 1
        }
        let seconds = Date().timeIntervalSince(started)
        note(String(format: "%d image(s) in %.1f s (loading %.1f s, generating %.2f s), ", images.count, seconds,
                    loaded.timeIntervalSince(started), generated.timeIntervalSince(loaded))
            + "peak memory \(ByteCount.format(ProcessMemory.peakResidentBytes)) (now "
            + "\(ByteCount.format(ProcessMemory.allocatedBytes)) allocated, "
            + "\(ByteCount.format(ProcessMemory.mappedBytes)) of memory-mapped files)")
    }

    private func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

/// Picks the backend for `--device`.
enum DeviceChoice {
    static func backend(_ name: String, threads: Int?) throws -> any Backend {
        switch name {
        case "cpu":
            return CPUBackend(threads: threads)
        case "auto":
            // The first GPU when a CUDA driver, NVRTC and cuBLASLt are there; otherwise the CPU.
            if let gpu = try? CUDABackend(ordinal: 0) { return gpu }
            return CPUBackend(threads: threads)
        case let value where value == "cuda" || value.hasPrefix("cuda:"):
            let ordinal = value == "cuda" ? 0 : Int(value.dropFirst(5)) ?? -1
            guard ordinal >= 0 else { throw CLIError("--device \(value): expected cuda:N") }
            return try CUDABackend(ordinal: ordinal)
        default:
            throw CLIError("--device must be cpu, cuda, cuda:N or auto (got \(name))")
        }
    }
}

/// A1111-style file numbering: the next five-digit prefix after the highest one in the folder.
enum OutputNaming {
    static func nextNumber(in folder: String) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let numbers = names.compactMap { name -> Int? in
            guard name.hasSuffix(".png"), let prefix = name.split(separator: "-").first, prefix.count == 5 else { return nil }
            return Int(prefix)
        }
        return (numbers.max() ?? -1) + 1
    }
}

/// A one-line progress bar on standard error: step k/n, it/s and ETA. Silent when not a terminal.
final class ProgressBar {
    let enabled: Bool, total: Int
    private var done = 0
    private let start = Date()

    init(enabled: Bool, total: Int) {
        self.enabled = enabled
        self.total = total
    }

    func advance(image: Int, batch: Int) {
        done += 1
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let remaining = Double(total - done) / max(rate, 1e-9)
        let width = 30, filled = width * done / max(total, 1)
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let label = batch > 1 ? "image \(image + 1)/\(batch) " : ""
        let line = String(format: "\r%@[%@] step %d/%d  %.2f it/s  ETA %.0fs ", label, bar, done, total, rate, remaining)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
