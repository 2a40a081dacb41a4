import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import ZImageServer

/// Jobs survive a restart: finished ones stay listed, queued ones run, a job that was running
/// when the server stopped runs again; nothing is lost or duplicated.
@Suite struct RestartTests {
    @Test func queuedAndRunningJobsRunAfterARestart() async throws {
        let directory = temporaryDataDirectory()
        // First life: one job finishes, then a slow one is running and two wait when the server stops.
        let slow = StubEngine(stepDelay: .seconds(10))
        let finished = try await buildApplication(options(directory), engine: StubEngine()).test(.router) { client in
            let id = try #require(try await client.postJSON("/api/v1/generations", ["prompt": "done", "width": 64,
                                                                                   "height": 64, "steps": 1]).json["id"] as? String)
            _ = try await client.waitForJob(id)
            return id
        }
        let ids = try await buildApplication(options(directory), engine: slow).test(.router) { client in
            var ids: [String] = []
            for name in ["running", "waiting1", "waiting2"] {
                ids.append(try #require(try await client.postJSON("/api/v1/generations", ["prompt": name, "width": 64,
                                                                                         "height": 64, "steps": 2]).json["id"] as? String))
            }
            #expect(try await client.waitForStatus(ids[0], "running"))
            return ids
        }
        // Second life: everything completes, in order, once.
        let fast = StubEngine()
        try await buildApplication(options(directory), engine: fast).test(.router) { client in
            for id in ids { #expect(try await client.waitForJob(id)["status"] as? String == "done", "\(id)") }
            let history = try await client.get("/api/v1/history?per_page=100").json
            let listed = (history["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(listed == ids.reversed() + [finished])
            #expect(Set(listed).count == listed.count)
            for item in history["items"] as? [[String: Any]] ?? [] {
                #expect((item["images"] as? [[String: Any]])?.count == 1)
            }
        }
        #expect(fast.calls == 3)
    }
}
