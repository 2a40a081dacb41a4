import ArgumentParser
import Foundation
import ZImageCPU
import ZImageCUDA
import ZImageHub
import ZImageModels
import ZImagePipeline
import ZImagePlanner
import ZImageTensor

/// `zimage generate`: prompt → PNG files.
public struct GenerateCommand: ParsableCommand {
    /// The subcommand's name, abstract and help text.
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

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "What to draw.")
    var prompt: String

    @Option(help: "What to avoid (used only with --guidance above 0).")
    var negativePrompt: String = ""

    @Option(help: "Width in pixels, a multiple of 16 (64 to 4096; default 1024, or the init image's).")
    var width: Int?

    @Option(help: "Height in pixels, a multiple of 16 (64 to 4096; default 1024, or the init image's).")
    var height: Int?

    @Option(help: "Denoising steps (model evaluations). Z-Image-Turbo is made for 8.")
    var steps: Int = 8

    @Option(help: "Classifier-free guidance scale; 0 (Turbo's setting) turns it off.")
    var guidance: Float = 0

    @Option(parsing: .unconditional, help: "Seed of the first image, 0 to 2^63 - 1; -1 picks a random one (always printed).")
    var seed: Int64 = Seed.randomMarker

    @Option(help: "Number of images (seeds seed, seed+1, ...).")
    var batch: Int = 1

    @Option(help: "Folder for the PNG files (created if missing).")
    var output: String = "outputs"

    @Flag(help: "Decode the image in tiles (less memory for large images).")
    var tiledDecode = false

    @OptionGroup var loraOptions: LoRAOptions

    @Option(help: "img2img: start from this PNG (resized to --width x --height when those are given, else its size).")
    var initImage: String?

    @Option(help: "img2img/inpainting: how much to change the init image, 0 to 1 (default 0.6; 1.0 with --mask).")
    var strength: Double?

    @Option(help: "Inpainting: a PNG mask of the init image (white repaints, black keeps; resized to the image).")
    var mask: String?

    @Option(help: ArgumentHelp(VRAMBudget.help, valueName: "bytes"))
    var vramBudget: VRAMBudget?

    @Option(help: ArgumentHelp("Where the weights live, overriding the plan's choice: resident, sequential (text "
        + "encoder loaded per new prompt), text-streaming (text encoder layers streamed from host memory), "
        + "block-streaming (the transformer's blocks too; like A1111's --lowvram).", valueName: "mode"))
    var memoryMode: MemoryMode?

    /// An empty command; ArgumentParser fills in the options.
    public init() {}

    /// Checks the options before `run` (ArgumentParser calls it first).
    public func validate() throws {
        do {
            _ = try Seed.resolve(seed, field: "--seed")
            try parameters.validate(limits: .engine, names: .commandLine)
        } catch {
            throw ValidationError(error.message)
        }
        if let strength, !(strength.isFinite && (0...1).contains(strength)) {
            throw ValidationError("--strength \(strength) is outside 0...1")
        }
        if mask != nil, initImage == nil { throw ValidationError("--mask needs --init-image") }
        if strength != nil, initImage == nil { throw ValidationError("--strength needs --init-image") }
    }

    /// The parameters the flags ask for (seed unresolved).
    var parameters: GenerationParameters {
        var p = GenerationParameters(prompt: prompt)
        p.negativePrompt = negativePrompt
        (p.width, p.height, p.steps, p.guidanceScale, p.batchSize) = (width ?? 1024, height ?? 1024, steps, guidance, batch)
        p.strength = strength
        p.tiledDecode = tiledDecode
        return p
    }

    /// Runs the command.
    public func run() throws {
        let started = Date()
        let interactive = isatty(STDERR_FILENO) == 1
        try WritableFolder.ensure(output, flag: "--output")
        let loras = try loraOptions.load(prompt: prompt)
        var parameters = self.parameters
        let edit = try initImage.map { path in
            try EditImages.load(initImage: path, mask: mask, width: width, height: height)
        }
        if let edit { (parameters.width, parameters.height) = (edit.image.width, edit.image.height) }
        let backend = try modelOptions.device.backend(threads: modelOptions.threads)
        var precision = modelOptions.precision.resolved(on: backend)
        // The plan, before any weight loads: a budget is kept or the run refused here.
        var placement = ComponentPlacement.resident
        if precision != .float32, !modelOptions.usesDemoModel, let decision = try RunPlanning.decide(
            backend: backend, budget: vramBudget,
            request: PlanRequest(width: parameters.width, height: parameters.height, batch: parameters.batchSize,
                                 steps: parameters.steps, guidance: parameters.guidanceScale > 0,
                                 weights: Self.weights(modelOptions.precision, precision),
                                 loraBytes: LoRAMerge.changedBytes(loras))) {
            note("plan: \(decision.reason)")
            let plan = try RunPlanning.require(decision)
            if plan.tiledDecode { parameters.tiledDecode = true }
            precision = RunPlanning.precision(plan, from: precision)
            placement = RunPlanning.placement(plan)
            if let budget = decision.budgetBytes { backend.limitDeviceMemory(toBytes: budget) }
        }
        if let memoryMode {
            placement = RunPlanning.placement(memoryMode)
            note("memory mode \(memoryMode.rawValue) (--memory-mode)")
        }
        let (pipeline, _, _, _) = try modelOptions.pipeline(backend: backend, precision: precision, placement: placement,
                                                            note: note)
        do {
            try pipeline.useLoRAs(loras)
        } catch {
            throw CLIError("--lora: \(error)")
        }
        for weighted in loras { note("LoRA \(weighted.lora.name) (\(weighted.lora.shortHash)) at \(weighted.strength)") }
        let loaded = Date()
        do { try parameters.validate(limits: .engine, names: .commandLine) } catch { throw CLIError(error.message) }
        let firstSeed = try Seed.resolve(seed, field: "--seed")
        parameters.seed = firstSeed
        note("seed \(firstSeed)")
        let stepsRun = parameters.steps - (edit.map {
            ZImagePipeline.firstStep(steps: parameters.steps, strength: parameters.strength ?? $0.defaultStrength)
        } ?? 0)
        let bar = ProgressBar(enabled: interactive, total: stepsRun * parameters.batchSize)
        // When each image after the first began: its first step is queued right after the previous
        // image's decode came back to the host (a synchronising copy), so these bound the images.
        var imageStarts: [Date] = []
        let images = try pipeline.generate(parameters, initImage: edit) { event in
            if event.stage == .denoising {
                bar.advance(image: event.image, batch: parameters.batchSize)
                if event.step == 1, event.image > 0, imageStarts.count < event.image { imageStarts.append(Date()) }
            }
            return true
        }
        bar.finish()
        if images.contains(where: \.promptTruncated) {
            note("warning: the prompt is longer than 512 tokens with its template; the rest was ignored "
                + "(see `zimage tokenize --template`)")
        }
        let generated = Date()
        // ZIMAGE_PROFILE=1: the CUDA backend's per-stage, per-op table.
        if let profile = pipeline.backend.profileReport() {
            note(profile)
            note("load: " + pipeline.loadTimings.map { "\($0.component) " + String(format: "%.2f s", $0.seconds) }
                .joined(separator: ", "))
        }
        var number = OutputNaming.nextNumber(in: output)
        for image in images {
            let path = (output as NSString).appendingPathComponent(String(format: "%05d-%llu.png", number, image.seed))
            do {
                try PNGEncoder.write(image.image, text: [("parameters", image.infotext)], to: path)
            } catch {
                throw CLIError("--output \(output): cannot write \(path): \(error)")
            }
            print(path)
            number += 1
        }
        let seconds = Date().timeIntervalSince(started)
        note(String(format: "%d image(s) in %.1f s (loading %.1f s, generating %.2f s), ", images.count, seconds,
                    loaded.timeIntervalSince(started), generated.timeIntervalSince(loaded))
            + "peak memory \(ByteCount.format(ProcessMemory.peakResidentBytes)) (now "
            + "\(ByteCount.format(ProcessMemory.allocatedBytes)) allocated, "
            + "\(ByteCount.format(ProcessMemory.mappedBytes)) of memory-mapped files)")
        // Seconds of each image: the first includes the prompt's encoding, the others reuse it.
        if images.count > 1, imageStarts.count == images.count - 1 {
            let bounds = [loaded] + imageStarts + [generated]
            note("per image: " + zip(bounds, bounds.dropFirst()).map { String(format: "%.3f s", $1.timeIntervalSince($0)) }
                .joined(separator: ", ") + " (the first encodes the prompt)")
        }
        // The device's own memory: the pool's high-water mark over loading and generating, and the
        // driver's view of the whole device (what nvidia-smi shows); the CPU has none.
        if let report = pipeline.backend.deviceMemoryReport() {
            note("peak device memory (\(report.device)): \(report.summary)")
        }
        if let pool = pipeline.backend as? any DeviceMemoryReporting, pool.poolOverLimitAllocations > 0 {
            note("warning: \(pool.poolOverLimitAllocations) allocations went past the --vram-budget pool limit "
                 + "(its cache already given back): the run held more than its plan predicted")
        }
    }

    /// The weight format the planner may use: the one `--precision` fixes, or nil (auto: its pick).
    /// The planner knows no int8 yet: `int8` is planned as bf16 (more memory than it takes).
    static func weights(_ choice: PrecisionChoice, _ resolved: Precision) -> WeightFormat? {
        guard case .fixed = choice else { return nil }
        return RunPlanning.weights(resolved)
    }

    private func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
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
