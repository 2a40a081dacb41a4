import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing
import ZImagePipeline
@testable import ZImageServer

/// How many generations run at once, over several engines.
final class ConcurrencyProbe: Sendable {
    private let state = NIOLockedValueBox((now: 0, most: 0))
    func enter() { state.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) } }
    func leave() { state.withLockedValue { $0.now -= 1 } }
    var most: Int { state.withLockedValue { $0.most } }
}

/// A stub engine on one "device" that reports to a probe and can fail its first calls the way a
/// device does (out of memory, a lost GPU).
final class DeviceEngine: GenerationEngine, Sendable {
    struct DeviceLost: Error, CustomStringConvertible { var description: String { "CUDA error: device lost (stub)" } }
    let modelName = "stub-model"
    let deviceDescription: String
    let isDemoModel = false
    let inner: StubEngine
    let probe: ConcurrencyProbe
    private let failuresLeft: NIOLockedValueBox<Int>
    private let calls = NIOLockedValueBox(0)

    init(_ device: String, probe: ConcurrencyProbe, stepDelay: Duration = .milliseconds(40), failFirst: Int = 0) {
        deviceDescription = device
        self.probe = probe
        inner = StubEngine(stepDelay: stepDelay)
        failuresLeft = NIOLockedValueBox(failFirst)
    }

    var callCount: Int { calls.withLockedValue { $0 } }

    func generate(_ p: GenerationParameters, progress: @escaping @Sendable (GenerationProgress) -> Bool) async throws
        -> [GeneratedImage] {
        calls.withLockedValue { $0 += 1 }
        probe.enter()
        defer { probe.leave() }
        try await Task.sleep(for: .milliseconds(20))
        let fail = failuresLeft.withLockedValue { left in
            defer { left = max(0, left - 1) }
            return left > 0
        }
        if fail { throw DeviceLost() }
        return try await inner.generate(p, progress: progress)
    }

    func memory() -> (used: Int, total: Int)? { (1, 2) }
}

@Suite struct MultiWorkerTests {
    @Test func twoWorkersRunJobsAtOnceAndEachReportsItself() async throws {
        let probe = ConcurrencyProbe()
        let engines = [DeviceEngine("cpu:a", probe: probe), DeviceEngine("cpu:b", probe: probe)]
        let specs = engines.map { WorkerSpec(device: $0.deviceDescription, engine: $0) }
        var settings = options()
        settings.nodeName = "node-a"
        try await buildApplication(settings, workers: specs).test(.router) { client in
            var ids: [String] = []
            for index in 0..<6 {
                let response = try await client.postJSON("/api/v1/generations", ["prompt": "job \(index)", "width": 64,
                                                                                 "height": 64, "steps": 4])
                ids.append(try #require(response.json["id"] as? String))
            }
            var workersSeen: Set<String> = []
            for id in ids {
                let job = try await client.waitForJob(id)
                #expect(job["status"] as? String == "done")
                #expect((job["images"] as? [[String: Any]])?.count == 1)
                workersSeen.insert(job["worker"] as? String ?? "?")
            }
            #expect(probe.most == 2, "two devices, two generations at once (most seen: \(probe.most))")
            #expect(workersSeen == ["node-a/0", "node-a/1"])
            #expect(engines.map(\.callCount).reduce(0, +) == 6, "each job generated once")
            let system = try await client.get("/api/v1/system").json
            let workers = try #require(system["workers"] as? [[String: Any]])
            #expect(workers.map { $0["device"] as? String } == ["cpu:a", "cpu:b"])
            #expect(workers.map { $0["jobs_completed"] as? Int ?? 0 }.reduce(0, +) == 6)
            #expect(system["node"] as? String == "node-a" && system["store"] as? String == "local")
            let metrics = String(buffer: try await client.get("/metrics").body)
            #expect(metrics.contains(#"zimage_worker_jobs_completed_total{node="node-a",worker="node-a/0"}"#))
            #expect(metrics.contains(#"zimage_worker_busy{node="node-a",worker="node-a/1",device="cpu:b"}"#))
            #expect(metrics.contains("zimage_queue_wait_seconds_count 6"))
            let queue = try await client.get("/api/v1/queue").json
            #expect((queue["running_jobs"] as? [Any])?.isEmpty == true && (queue["queued"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func aWorkerWhoseDeviceFailsIsRebuiltAndItsJobIsNotLost() async throws {
        let probe = ConcurrencyProbe()
        let broken = DeviceEngine("cuda:0", probe: probe, failFirst: 1)
        let healthy = DeviceEngine("cuda:1", probe: probe, stepDelay: .milliseconds(200))
        let rebuilds = NIOLockedValueBox(0)
        let specs = [
            WorkerSpec(device: "cuda:0", engine: broken, rebuild: {
                rebuilds.withLockedValue { $0 += 1 }
                return broken
            }),
            WorkerSpec(device: "cuda:1", engine: healthy),
        ]
        var settings = options()
        settings.nodeName = "gpu-box"
        try await buildApplication(settings, workers: specs).test(.router) { client in
            // Two jobs: the first free worker (cuda:0) takes the first one and its device fails.
            var ids: [String] = []
            for index in 0..<2 {
                let response = try await client.postJSON("/api/v1/generations", ["prompt": "job \(index)", "width": 64,
                                                                                 "height": 64, "steps": 2])
                ids.append(try #require(response.json["id"] as? String))
            }
            for id in ids {
                let job = try await client.waitForJob(id)
                #expect(job["status"] as? String == "done", "\(job)")
                #expect((job["images"] as? [[String: Any]])?.count == 1)
            }
            let attempts = try await ids.asyncMap { try await client.get("/api/v1/generations/\($0)").json["attempts"] as? Int }
            #expect(attempts.sorted { ($0 ?? 0) < ($1 ?? 0) } == [1, 2], "the failed job ran again once")
            #expect(rebuilds.withLockedValue { $0 } == 1)
            let workers = try #require(try await client.get("/api/v1/system").json["workers"] as? [[String: Any]])
            #expect(workers.first?["device_failures"] as? Int == 1)
            #expect((workers.first?["last_error"] as? String)?.contains("device lost") == true)
            #expect(workers.map { $0["state"] as? String } == ["idle", "idle"])
            #expect(try await client.get("/health").status == .ok)
            // It takes work again after the rebuild.
            let more = try await client.postJSON("/api/v1/generations", ["prompt": "after", "width": 64, "height": 64,
                                                                         "steps": 1])
            #expect(try await client.waitForJob(try #require(more.json["id"] as? String))["status"] as? String == "done")
        }
    }

    @Test func aJobFailingOnEveryTryFailsWithTheDevicesMessage() async throws {
        let probe = ConcurrencyProbe()
        let engine = DeviceEngine("cuda:0", probe: probe, failFirst: 10)
        try await buildApplication(options(), workers: [WorkerSpec(device: "cuda:0", engine: engine)]).test(.router) { client in
            let id = try #require(try await client.postJSON("/api/v1/generations", ["prompt": "x", "width": 64, "height": 64])
                .json["id"] as? String)
            let job = try await client.waitForJob(id)
            #expect(job["status"] as? String == "failed")
            #expect((job["error"] as? String)?.contains("device lost") == true)
            #expect(job["attempts"] as? Int == 2 && engine.callCount == 2)
        }
    }

    @Test func aJobsOwnErrorFailsItAtOnceWithoutARebuild() async throws {
        let rebuilds = NIOLockedValueBox(0)
        let engine = StubEngine(failWith: GenerationError.invalidParameter("lora", "no LoRA named x"))
        let spec = WorkerSpec(device: "cuda:0", engine: engine, rebuild: {
            rebuilds.withLockedValue { $0 += 1 }
            return engine
        })
        try await buildApplication(options(), workers: [spec]).test(.router) { client in
            let id = try #require(try await client.postJSON("/api/v1/generations", ["prompt": "x", "width": 64, "height": 64])
                .json["id"] as? String)
            let job = try await client.waitForJob(id)
            #expect(job["status"] as? String == "failed" && job["attempts"] as? Int == 1)
            #expect((job["error"] as? String)?.contains("no LoRA named x") == true)
            #expect(engine.calls == 1 && rebuilds.withLockedValue { $0 } == 0)
            let workers = try #require(try await client.get("/api/v1/system").json["workers"] as? [[String: Any]])
            #expect(workers.first?["device_failures"] as? Int == 0 && workers.first?["jobs_failed"] as? Int == 1)
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
