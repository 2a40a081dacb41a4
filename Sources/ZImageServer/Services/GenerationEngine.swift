import Dispatch
import Foundation
import ZImagePipeline
import ZImageTensor

/// What the server needs from a model: generate with progress, and describe itself.
/// `generate` is only ever called by the one worker of a `GenerationService`, never concurrently.
public protocol GenerationEngine: Sendable {
    var modelName: String { get }
    var deviceDescription: String { get }
    var isDemoModel: Bool { get }
    /// Generates; `progress` returns false to cancel (then `GenerationError.cancelled` is thrown).
    func generate(_ parameters: GenerationParameters,
                  progress: @escaping @Sendable (GenerationProgress) -> Bool) async throws -> [GeneratedImage]
    /// Device memory in use and in total, when the device reports it.
    func memory() -> (used: Int, total: Int)?
    /// Tokens of a prompt as the text encoder would count them (without the template), when the
    /// engine has a tokenizer; the server's token limit uses it. Must be safe to call from any thread.
    var tokenCount: (@Sendable (String) -> Int)? { get }
    /// Whether `error` from `generate` means the device or the engine's state on it failed (out of
    /// memory, a driver error): then the worker rebuilds its engine and the job gets one more try.
    /// Other errors are the job's own and fail it at once.
    func isDeviceFailure(_ error: any Error) -> Bool
}

extension GenerationEngine {
    /// No tokenizer: the token limit is not checked.
    public var tokenCount: (@Sendable (String) -> Int)? { nil }

    /// Every error but a `GenerationError` (parameters the model cannot take, a model it cannot run).
    public func isDeviceFailure(_ error: any Error) -> Bool { !(error is GenerationError) }
}

/// The real engine: a `ZImagePipeline` on one device, run on its own thread so that long CPU or
/// GPU work never blocks the server's event loops or Swift's cooperative pool.
public final class PipelineEngine: GenerationEngine, @unchecked Sendable {
    // The pipeline is touched only on `queue` (serial), so sharing this object is safe.
    private let pipeline: ZImagePipeline
    private let queue = DispatchQueue(label: "zimage.engine")
    public let modelName: String
    public let deviceDescription: String
    public let isDemoModel: Bool
    /// A preview every this many steps.
    public let previewEvery: Int

    public init(pipeline: ZImagePipeline, modelName: String, deviceDescription: String, isDemoModel: Bool,
                previewEvery: Int = 2) {
        self.pipeline = pipeline
        self.modelName = modelName
        self.deviceDescription = deviceDescription
        self.isDemoModel = isDemoModel
        self.previewEvery = previewEvery
    }

    public func generate(_ parameters: GenerationParameters,
                         progress: @escaping @Sendable (GenerationProgress) -> Bool) async throws -> [GeneratedImage] {
        // The pipeline is only used on the serial `queue`, one generation at a time.
        nonisolated(unsafe) let pipeline = self.pipeline
        let previewEvery = self.previewEvery
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    try pipeline.generate(parameters, previewEvery: previewEvery, progress: progress)
                })
            }
        }
    }

    /// Counts with the pipeline's tokenizer (thread-safe; it never touches the model).
    public var tokenCount: (@Sendable (String) -> Int)? {
        let tokenizer = pipeline.tokenizer
        return { tokenizer.encode($0).count }
    }

    public func memory() -> (used: Int, total: Int)? {
        let used = ProcessMemory.allocatedBytes
        return used > 0 ? (used, Int(ProcessInfo.processInfo.physicalMemory)) : nil
    }
}
