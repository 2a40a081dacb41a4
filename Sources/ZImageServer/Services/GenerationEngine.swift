import Dispatch
import Foundation
import ZImageModels
import ZImagePipeline
import ZImageTensor

/// What the server needs from a model: generate with progress, and describe itself.
/// `generate` is only ever called by the one worker of a `GenerationService`, never concurrently.
public protocol GenerationEngine: Sendable {
    /// The model's name, as `/api/v1/system` and the model lists of the A1111 and OpenAI APIs report it.
    var modelName: String { get }
    /// The device in words, as `/api/v1/system` and the worker status report it.
    var deviceDescription: String { get }
    /// Whether this is the tiny random demo model (its images are noise).
    var isDemoModel: Bool { get }
    /// Generates; `progress` returns false to cancel (then `GenerationError.cancelled` is thrown).
    func generate(_ parameters: GenerationParameters,
                  progress: @escaping @Sendable (GenerationProgress) -> Bool) async throws -> [GeneratedImage]
    /// Device memory this engine holds and the device's total, when the device has memory of its own
    /// (a GPU); nil on the CPU, whose memory is the process's (`ProcessMemory`), never shown as a device's.
    func memory() -> (used: Int, total: Int)?
    /// The device's memory report (pool now and at most since the last job started, driver's
    /// free/total); nil on the CPU.
    func deviceMemory() -> DeviceMemoryReport?
    /// Tokens of a prompt as the text encoder would count them (without the template), when the
    /// engine has a tokenizer; the server's token limit uses it. Must be safe to call from any thread.
    var tokenCount: (@Sendable (String) -> Int)? { get }
    /// Whether `error` from `generate` means the device or the engine's state on it failed (out of
    /// memory, a driver error): then the worker rebuilds its engine and the job gets one more try.
    /// Other errors are the job's own and fail it at once.
    func isDeviceFailure(_ error: any Error) -> Bool
    /// The LoRAs a generation may name (the LoRA folder); must be safe to call from any thread.
    func availableLoRAs() -> [LoRALibrary.Entry]
}

extension GenerationEngine {
    /// No tokenizer: the token limit is not checked.
    public var tokenCount: (@Sendable (String) -> Int)? { nil }

    /// Every error but the job's own: a `GenerationError` (parameters the model cannot take, a model
    /// it cannot run), a LoRA file that does not fit (`LoRAError`), an init image or mask that is
    /// not a PNG (`PNGError`).
    public func isDeviceFailure(_ error: any Error) -> Bool {
        !(error is GenerationError || error is LoRAError || error is PNGError)
    }
    /// No LoRA folder.
    public func availableLoRAs() -> [LoRALibrary.Entry] { [] }
    /// No device memory of its own.
    public func deviceMemory() -> DeviceMemoryReport? { nil }
}

/// The real engine: a `ZImagePipeline` on one device, run on its own thread so that long CPU or
/// GPU work never blocks the server's event loops or Swift's cooperative pool.
public final class PipelineEngine: GenerationEngine, @unchecked Sendable {
    // The pipeline is touched only on `queue` (serial), so sharing this object is safe.
    private let pipeline: ZImagePipeline
    private let queue = DispatchQueue(label: "zimage.engine")
    /// The model's name (see `GenerationEngine`).
    public let modelName: String
    /// The device in words (see `GenerationEngine`).
    public let deviceDescription: String
    /// Whether the pipeline is the demo model.
    public let isDemoModel: Bool
    /// A preview every this many steps.
    public let previewEvery: Int
    /// The planner's check of each job against the device memory budget (`serve --vram-budget`),
    /// given the job and the bytes its LoRAs change (`LoRAMerge.changedBytes`): returns whether the
    /// job must decode in tiles and whether the text encoder must leave the device after encoding
    /// (sequential components), or throws the refusal (a `GenerationError`, so the job fails with
    /// the reason). Nil: no budget. Set before the engine serves.
    public var jobPlanner: (@Sendable (GenerationParameters, _ loraBytes: Int) throws
        -> (tiledDecode: Bool, releasesTextEncoder: Bool))?

    /// The LoRA folder generations pick LoRAs from (by name).
    public let loraLibrary: LoRALibrary?
    /// LoRA files read so far, by path, with the size and date they had (only touched on `queue`).
    private var loraCache: [String: (size: Int, modified: Date, lora: LoRAFile)] = [:]

    /// The engine around a loaded `pipeline`, with a preview every `previewEvery` steps and
    /// LoRAs by name from `loraLibrary`.
    public init(pipeline: ZImagePipeline, modelName: String, deviceDescription: String, isDemoModel: Bool,
                previewEvery: Int = 2, loraLibrary: LoRALibrary? = nil) {
        self.pipeline = pipeline
        self.loraLibrary = loraLibrary
        self.modelName = modelName
        self.deviceDescription = deviceDescription
        self.isDemoModel = isDemoModel
        self.previewEvery = previewEvery
    }

    /// Generates on the engine's own queue: the job's LoRAs merged first (read once per file),
    /// its init image and mask decoded, then the pipeline; `progress` returning false cancels.
    public func generate(_ parameters: GenerationParameters,
                         progress: @escaping @Sendable (GenerationProgress) -> Bool) async throws -> [GeneratedImage] {
        // The pipeline is only used on the serial `queue`, one generation at a time.
        nonisolated(unsafe) let pipeline = self.pipeline
        let previewEvery = self.previewEvery
        let jobPlanner = self.jobPlanner
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    var parameters = parameters
                    // The job's LoRAs first: the plan counts what merging them holds on the device.
                    let loras = try self.resolveLoRAs(parameters.loras ?? [])
                    if let plan = try jobPlanner?(parameters, LoRAMerge.changedBytes(loras)) {
                        if plan.tiledDecode { parameters.tiledDecode = true }
                        pipeline.releasesTextEncoder = plan.releasesTextEncoder
                    }
                    // The job's own high-water mark (the resident weights are in it: they stay held).
                    pipeline.backend.resetPeakDeviceMemory()
                    try pipeline.useLoRAs(loras)
                    let input = try Self.initImage(parameters)
                    return try pipeline.generate(parameters, initImage: input, previewEvery: previewEvery,
                                                 progress: progress)
                })
            }
        }
    }

    /// The LoRA folder's files (none without a folder).
    public func availableLoRAs() -> [LoRALibrary.Entry] { loraLibrary?.entries() ?? [] }

    /// The named LoRAs, read once and kept while their file is unchanged (called on `queue` only).
    private func resolveLoRAs(_ references: [LoRAReference]) throws -> [WeightedLoRA] {
        try references.map { reference in
            guard let library = loraLibrary, let path = library.path(for: reference.name, allowPaths: false) else {
                throw GenerationError.invalidParameter("lora", "no LoRA named '\(reference.name)'")
            }
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
            let modified = attributes?[.modificationDate] as? Date ?? .distantPast
            if let cached = loraCache[path], cached.size == size, cached.modified == modified {
                return try WeightedLoRA(cached.lora, strength: reference.strength)
            }
            let lora = try LoRAFile(path: path)
            loraCache[path] = (size, modified, lora)
            return try WeightedLoRA(lora, strength: reference.strength)
        }
    }

    /// The job's init image and mask, decoded and resized to its size.
    static func initImage(_ p: GenerationParameters) throws -> InitImage? {
        guard let data = p.initImage else { return nil }
        let image = try EditImages.decode([UInt8](data), field: "init_image")
        var mask = try p.mask.map { try EditImages.decode([UInt8]($0), field: "mask") }
        if p.maskInvert == true, let original = mask {
            mask = RGBImage(width: original.width, height: original.height, pixels: original.pixels.map { 255 - $0 })
        }
        return EditImages.make(image: image, mask: mask, width: p.width, height: p.height)
    }

    /// Counts with the pipeline's tokenizer (thread-safe; it never touches the model).
    public var tokenCount: (@Sendable (String) -> Int)? {
        let tokenizer = pipeline.tokenizer
        return { tokenizer.encode($0).count }
    }

    /// The GPU memory this engine's pool holds (tensors and cache) of the device's total; nil on the
    /// CPU (the server once showed the process's host memory here as "device memory").
    public func memory() -> (used: Int, total: Int)? {
        guard let report = deviceMemory(), let total = report.driverTotalBytes else { return nil }
        return (report.poolInUseBytes + report.poolCachedBytes, total)
    }

    /// The pipeline backend's report (`DeviceMemoryReporting`); nil on the CPU.
    public func deviceMemory() -> DeviceMemoryReport? { pipeline.backend.deviceMemoryReport() }
}
