import Foundation
import HummingbirdTesting
import Testing
import ZImageCPU
import ZImagePipeline
import ZImagePlanner
import ZImageTensor
import ZImageTestSupport
@testable import ZImageServer

/// An engine on a device with memory of its own: a fixed pool report.
final class GPUStubEngine: GenerationEngine, @unchecked Sendable {
    let modelName = "stub-model"
    let deviceDescription = "cuda:0 (bf16)"
    let isDemoModel = false
    let report = DeviceMemoryReport(device: "cuda:0", poolInUseBytes: 3 << 30, poolCachedBytes: 1 << 30,
                                    poolPeakInUseBytes: 5 << 30, poolPeakReservedBytes: 6 << 30,
                                    driverFreeBytes: 70 << 30, driverTotalBytes: 80 << 30)

    func generate(_ p: GenerationParameters, progress: @escaping @Sendable (GenerationProgress) -> Bool) async throws
        -> [GeneratedImage] { [] }
    func memory() -> (used: Int, total: Int)? { (report.poolInUseBytes + report.poolCachedBytes, 80 << 30) }
    func deviceMemory() -> DeviceMemoryReport? { report }
}

/// `/api/v1/system` and `/metrics` with and without a GPU monitor (NVML) and device memory: the
/// CPU reports no device memory (never the process's host memory as the device's), a missing
/// monitor leaves the GPU fields null, and a monitor's readings and the pool's peak appear.
@Suite struct DeviceStatsTests {
    @Test func theCPUEngineReportsNoDeviceMemory() throws {
        let pipeline = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend())
        let engine = PipelineEngine(pipeline: pipeline, modelName: "tiny", deviceDescription: "cpu", isDemoModel: false)
        // The process has host memory in use; it must not be shown as device memory.
        #expect(ProcessMemory.allocatedBytes > 0)
        #expect(engine.memory() == nil)
        #expect(engine.deviceMemory() == nil)
        #expect(CPUBackend().deviceMemoryReport() == nil)
    }

    @Test func withoutAMonitorTheGPUFieldsAreNullAndNothingFails() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let response = try await client.get("/api/v1/system")
            #expect(response.status == .ok)
            let system = response.json
            #expect(system["gpus"] is NSNull)
            #expect(system["plan"] is NSNull)
            #expect(system["device_memory"] is NSNull)
            let host = try #require(system["host_memory"] as? [String: Any])
            #expect((host["physical_bytes"] as? Int ?? 0) > 0)
            let metrics = String(buffer: try await client.get("/metrics").body)
            #expect(!metrics.contains("zimage_gpu_"))
            #expect(!metrics.contains("zimage_worker_memory_peak_bytes"))
        }
    }

    @Test func aMonitorsReadingsAndThePoolPeakAreShown() async throws {
        var settings = options()
        settings.gpuStatistics = {
            var gpu = GPUStatistics(index: 0, name: "Fake GPU")
            (gpu.memoryUsedBytes, gpu.memoryFreeBytes, gpu.memoryTotalBytes) = (10 << 30, 70 << 30, 80 << 30)
            (gpu.utilizationPercent, gpu.powerDrawWatts, gpu.powerLimitWatts) = (87, 250.5, 700)
            (gpu.temperatureCelsius, gpu.smClockMHz) = (61, 1980)
            return [gpu]  // no memory clock: a reading the card did not give
        }
        let decision = Planner().decide(PlanRequest(), on: try #require(CardCatalog.cards.first { $0.name.contains("H200") }),
                                        budget: 100 << 30)
        settings.plan = PlanSummary(decision)
        let app = try buildApplication(settings, engine: GPUStubEngine())
        try await app.test(.router) { client in
            let system = try await client.get("/api/v1/system").json
            let gpus = try #require(system["gpus"] as? [[String: Any]])
            #expect(gpus.count == 1)
            #expect(gpus.first?["name"] as? String == "Fake GPU")
            #expect(gpus.first?["power_draw_watts"] as? Double == 250.5)
            #expect(gpus.first?["utilization_percent"] as? Int == 87)
            #expect(gpus.first?["memory_clock_mhz"] == nil, "an absent reading is left out")
            let device = try #require(system["device_memory"] as? [String: Any])
            #expect(device["pool_peak_in_use_bytes"] as? Int == 5 << 30)
            #expect(device["driver_used_bytes"] as? Int == 10 << 30)
            let memory = try #require(system["memory"] as? [String: Any])
            #expect(memory["used"] as? Int == 4 << 30 && memory["total"] as? Int == 80 << 30)
            let plan = try #require(system["plan"] as? [String: Any])
            #expect(plan["weights"] as? String == "bf16" && plan["mode"] as? String == "resident")
            let planSettings = try #require(plan["settings"] as? [String: Any])
            #expect(planSettings["text_encoder"] as? String == "resident" && planSettings["transformer"] as? String == "resident")
            let workers = try #require(system["workers"] as? [[String: Any]])
            #expect((workers.first?["device_memory"] as? [String: Any])?["pool_peak_reserved_bytes"] as? Int == 6 << 30)
            let metrics = String(buffer: try await client.get("/metrics").body)
            #expect(metrics.contains(#"zimage_gpu_power_watts{gpu="0",name="Fake GPU"} 250.5"#))
            #expect(metrics.contains(#"zimage_gpu_utilization_ratio{gpu="0",name="Fake GPU"} 0.87"#))
            #expect(!metrics.contains("zimage_gpu_memory_clock_hertz"))
            let peak = metrics.split(separator: "\n").first { $0.hasPrefix("zimage_worker_memory_peak_bytes{") }
            let value: Double? = peak?.split(separator: " ").last.flatMap { Double(String($0)) }
            let expected = Double(5 << 30)
            #expect(value == expected, "\(peak ?? "no peak gauge")")
        }
    }
}
