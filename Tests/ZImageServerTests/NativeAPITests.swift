import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import ZImagePipeline
@testable import ZImageServer

@Suite struct NativeAPITests {
    @Test func generateFetchPageAndDelete() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let submitted = try await client.postJSON("/api/v1/generations",
                                                      ["prompt": "a fox", "width": 64, "height": 80, "seed": 7,
                                                       "batch_size": 2, "steps": 3])
            #expect(submitted.status == .accepted)
            let id = try #require(submitted.json["id"] as? String)
            #expect(submitted.json["seed"] as? Int == 7)
            let job = try await client.waitForJob(id)
            #expect(job["status"] as? String == "done")
            let images = try #require(job["images"] as? [[String: Any]])
            #expect(images.map { $0["seed"] as? Int } == [7, 8])
            #expect((job["parameters"] as? [String: Any])?["prompt"] as? String == "a fox")

            let url = try #require(images.first?["url"] as? String)
            let png = try await client.get(url)
            #expect(png.status == .ok && png.headers[.contentType] == "image/png")
            let decoded = try PNGDecoder.decode(Array(buffer: png.body))
            #expect(decoded.image.width == 64 && decoded.image.height == 80)
            #expect(decoded.text["parameters"]?.contains("Seed: 7, Size: 64x80") == true)

            let history = try await client.get("/api/v1/history?page=1&per_page=10")
            #expect(history.json["total"] as? Int == 1)
            #expect((history.json["items"] as? [[String: Any]])?.first?["id"] as? String == id)

            #expect(try await client.execute(uri: "/api/v1/history/\(id)", method: .delete).status == .noContent)
            #expect(try await client.get("/api/v1/generations/\(id)").status == .notFound)
            #expect(try await client.get(url).status == .notFound)
        }
    }

    @Test func historyIsNewestFirstAndPaged() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            var ids: [String] = []
            for seed in 0..<5 {
                let response = try await client.postJSON("/api/v1/generations", ["prompt": "p\(seed)", "width": 64,
                                                                                 "height": 64, "seed": seed, "steps": 1])
                ids.append(try #require(response.json["id"] as? String))
            }
            for id in ids { _ = try await client.waitForJob(id) }
            let first = try await client.get("/api/v1/history?page=1&per_page=2").json
            let second = try await client.get("/api/v1/history?page=2&per_page=2").json
            let third = try await client.get("/api/v1/history?page=3&per_page=2").json
            let order = [first, second, third].flatMap { ($0["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String } }
            #expect(order == ids.reversed())
            #expect(first["total"] as? Int == 5)
        }
    }

    @Test func everyBadRequestIsRefusedWithItsField() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let cases: [(Any, HTTPResponse.Status, String?)] = [
                (["width": 64], .badRequest, "prompt"),
                (["prompt": 5], .badRequest, "prompt"),
                (["prompt": "x", "width": "wide"], .badRequest, "width"),
                (["prompt": "x", "width": 64.5], .badRequest, "width"),
                (["prompt": "x", "width": 1000], .unprocessableContent, "width"),
                (["prompt": "x", "height": 32], .unprocessableContent, "height"),
                (["prompt": "x", "width": 4096], .unprocessableContent, "width"),
                (["prompt": "x", "steps": 0], .unprocessableContent, "steps"),
                (["prompt": "x", "steps": 51], .unprocessableContent, "steps"),
                (["prompt": "x", "batch_size": 9], .unprocessableContent, "batch_size"),
                (["prompt": "x", "guidance_scale": -1], .unprocessableContent, "guidance_scale"),
                (["prompt": "x", "seed": -2], .badRequest, "seed"),
                (["prompt": "x", "tiled_decode": "yes"], .badRequest, "tiled_decode"),
                (["prompt": String(repeating: "a", count: 10_001)], .badRequest, "prompt"),
                (["prompt": "x", "negative_prompt": String(repeating: "a", count: 10_001)], .badRequest, "negative_prompt"),
            ]
            for (request, status, field) in cases {
                let response = try await client.postJSON("/api/v1/generations", request)
                #expect(response.status == status, "\(request)")
                #expect(response.errorField == field, "\(request): \(response.json)")
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            }
            let notJSON = try await client.execute(uri: "/api/v1/generations", method: .post,
                                                   body: ByteBuffer(string: "{prompt"))
            #expect(notJSON.status == .badRequest && notJSON.errorCode == "invalid_request")
            let huge = try await client.execute(uri: "/api/v1/generations", method: .post,
                                                body: ByteBuffer(repeating: 0x20, count: 33 << 20))  // img2img: 32 MiB
            #expect(huge.status == .contentTooLarge)
            #expect(try await client.get("/api/v1/generations/nope").status == .notFound)
            #expect(try await client.get("/api/v1/images/nope").status == .notFound)
            // Paths are never built from input: a traversal attempt is refused (400 from the router) or unknown (404).
            let traversal = try await client.get("/api/v1/images/..%2F..%2Fzimage.sqlite")
            #expect(traversal.status == .badRequest || traversal.status == .notFound)
            #expect(traversal.headers[.contentType] != "image/png")
            #expect(try await client.execute(uri: "/api/v1/generations/nope/cancel", method: .post).status == .notFound)
            #expect(try await client.get("/api/v1/history?per_page=0").errorField == "per_page")
            #expect(try await client.get("/api/v1/history?page=0").errorField == "page")
            #expect(try await client.execute(uri: "/api/v1/history/nope", method: .delete).status == .notFound)
            #expect(try await client.get("/no/such/route").status == .notFound)
            #expect(try await client.get("/api/v1/generations/nope/events").status == .notFound)
            #expect(try await client.execute(uri: "/api/v1/generations", method: .get).status != .ok)
        }
    }

    @Test func fullQueueAnswers429() async throws {
        let app = try buildApplication(options(maxQueue: 2), engine: StubEngine(stepDelay: .seconds(5)))
        try await app.test(.router) { client in
            let first = try await client.postJSON("/api/v1/generations", ["prompt": "x", "width": 64, "height": 64])
            let firstID = try #require(first.json["id"] as? String)
            // Wait until the worker runs the first job, so exactly two can wait behind it.
            for _ in 0..<500 where try await client.get("/api/v1/generations/\(firstID)").json["status"] as? String != "running" {
                try await Task.sleep(for: .milliseconds(10))
            }
            var statuses: [HTTPResponse.Status] = [first.status]
            var ids = [firstID]
            for _ in 0..<4 {
                let response = try await client.postJSON("/api/v1/generations", ["prompt": "x", "width": 64, "height": 64])
                statuses.append(response.status)
                if let id = response.json["id"] as? String { ids.append(id) }
                if response.status == .tooManyRequests { #expect(response.errorCode == "queue_full") }
            }
            // One running and two waiting fit; the rest are refused.
            #expect(statuses.filter { $0 == .accepted }.count == 3)
            #expect(statuses.filter { $0 == .tooManyRequests }.count == 2)
            for id in ids { _ = try await client.execute(uri: "/api/v1/generations/\(id)/cancel", method: .post) }
        }
    }

    @Test func cancelQueuedAndRunningJobs() async throws {
        let app = try buildApplication(options(), engine: StubEngine(stepDelay: .milliseconds(100)))
        try await app.test(.router) { client in
            let first = try #require(try await client.postJSON("/api/v1/generations", ["prompt": "a", "width": 64,
                                                                                      "height": 64, "steps": 50]).json["id"] as? String)
            let second = try #require(try await client.postJSON("/api/v1/generations", ["prompt": "b", "width": 64,
                                                                                       "height": 64]).json["id"] as? String)
            #expect(try await client.waitForStatus(first, "running"))
            let queue = try await client.get("/api/v1/queue").json
            #expect((queue["running"] as? [String: Any])?["id"] as? String == first)
            #expect((queue["queued"] as? [[String: Any]])?.first?["position"] as? Int == 1)
            let cancelledQueued = try await client.execute(uri: "/api/v1/generations/\(second)/cancel", method: .post)
            #expect(cancelledQueued.json["status"] as? String == "cancelled")
            _ = try await client.execute(uri: "/api/v1/generations/\(first)/cancel", method: .post)
            let running = try await client.waitForJob(first)
            #expect(running["status"] as? String == "cancelled")
            let again = try await client.execute(uri: "/api/v1/generations/\(first)/cancel", method: .post)
            #expect(again.status == .conflict)
            #expect(try await client.execute(uri: "/api/v1/history/\(first)", method: .delete).status == .noContent)
        }
    }

    @Test func eventsStreamEndsWithDone() async throws {
        // 30 steps of 50 ms: the stream is opened while the job runs, even on a loaded machine.
        let app = try buildApplication(options(), engine: StubEngine(stepDelay: .milliseconds(50)))
        try await app.test(.live) { client in
            let id = try #require(try await client.postJSON("/api/v1/generations", ["prompt": "a", "width": 64,
                                                                                   "height": 64, "steps": 30]).json["id"] as? String)
            let stream = try await client.get("/api/v1/generations/\(id)/events")
            #expect(stream.headers[.contentType] == "text/event-stream")
            let text = String(buffer: stream.body)
            let kinds = text.split(separator: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
            #expect(kinds.last == "done", "\(kinds)")
            #expect(kinds.filter { $0 == "progress" }.count >= 2, "\(kinds)")
            #expect(text.contains("data:image/png;base64,"))
            // After the end, the stream opens with the final state and closes.
            let later = String(buffer: try await client.get("/api/v1/generations/\(id)/events").body)
            #expect(later.hasPrefix("event: done"))
        }
    }

    @Test func failuresEndTheJobAndTheServerGoesOn() async throws {
        struct OutOfMemory: Error, CustomStringConvertible { var description: String { "out of memory on cuda:0" } }
        let app = try buildApplication(options(), engine: StubEngine(failWith: OutOfMemory()))
        try await app.test(.router) { client in
            let id = try #require(try await client.postJSON("/api/v1/generations", ["prompt": "a", "width": 64,
                                                                                   "height": 64]).json["id"] as? String)
            let job = try await client.waitForJob(id)
            #expect(job["status"] as? String == "failed")
            #expect((job["error"] as? String)?.contains("out of memory") == true)
            #expect(try await client.get("/api/v1/system").status == .ok)
            let metrics = String(buffer: try await client.get("/metrics").body)
            #expect(metrics.contains("zimage_jobs_failed_total 1"))
        }
    }

    @Test func systemAndMetricsAndOpenAPI() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let system = try await client.get("/api/v1/system").json
            #expect(system["model"] as? String == "stub-model" && system["queue_length"] as? Int == 0)
            let metrics = String(buffer: try await client.get("/metrics").body)
            for name in ["zimage_queue_length", "zimage_jobs_completed_total", "zimage_job_duration_seconds",
                         "zimage_step_duration_seconds", "zimage_http_requests_total"] {
                #expect(metrics.contains(name), "\(name)")
            }
            #expect(try await client.get("/api/v1/openapi.json").json["openapi"] as? String == "3.1.0")
            let page = try await client.get("/")
            #expect(page.status == .ok && String(buffer: page.body).lowercased().contains("<!doctype html"))
        }
    }
}
