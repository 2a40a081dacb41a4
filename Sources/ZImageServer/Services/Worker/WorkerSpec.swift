import Foundation
import ZImageTensor

/// One device's worker as `zimage serve` sets it up: the engine already loaded on the device, and
/// how to load a fresh one after the device failed (out of memory, driver error).
public struct WorkerSpec: Sendable {
    /// The device as the user named it (`cpu`, `cuda:1`).
    public var device: String
    /// The engine loaded at start.
    public var engine: any GenerationEngine
    /// Builds a new engine on the same device; called after a job's engine failed.
    public var rebuild: @Sendable () async throws -> any GenerationEngine

    /// A worker on `device` with `engine`; without `rebuild` the same engine is used again.
    public init(device: String, engine: any GenerationEngine,
                rebuild: (@Sendable () async throws -> any GenerationEngine)? = nil) {
        self.device = device
        self.engine = engine
        self.rebuild = rebuild ?? { engine }
    }
}

/// What a worker is doing, as `/api/v1/system` and `/metrics` report it.
struct WorkerStatus: Sendable {
    enum State: String, Sendable { case idle, running, rebuilding, broken }
    var id: String
    var device: String
    var engineDevice: String
    var state: State = .idle
    var job: String?
    var completed = 0
    var failed = 0
    var deviceFailures = 0
    /// Seconds of the last denoising step, and of the last finished job.
    var lastStepSeconds: Double?
    var lastJobSeconds: Double?
    var lastError: String?
    var memory: (used: Int, total: Int)?
    var deviceMemory: DeviceMemoryReport?

    var object: [String: Any] {
        var object: [String: Any] = [
            "id": id, "device": device, "engine_device": engineDevice, "state": state.rawValue,
            "job": job ?? NSNull(), "jobs_completed": completed, "jobs_failed": failed,
            "device_failures": deviceFailures, "last_step_seconds": lastStepSeconds ?? NSNull(),
            "last_job_seconds": lastJobSeconds ?? NSNull(), "last_error": lastError ?? NSNull(),
        ]
        object["memory"] = memory.map { ["used": $0.used, "total": $0.total] } ?? NSNull()
        object["device_memory"] = deviceMemory?.object ?? NSNull()
        return object
    }
}
