import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import ZImageServer

/// `Idempotency-Key` on the native and OpenAI submit routes: a retry makes no second job.
@Suite struct IdempotencyTests {
    static func key(_ value: String) -> HTTPFields { [HTTPField.Name("Idempotency-Key")!: value] }

    @Test func nativeRetriesWithTheSameKeyGetTheSameJob() async throws {
        let engine = StubEngine()
        try await buildApplication(options(), engine: engine).test(.router) { client in
            let request: [String: Any] = ["prompt": "a fox", "width": 64, "height": 64, "steps": 2]
            let first = try await client.postJSON("/api/v1/generations", request, headers: Self.key("retry-1"))
            #expect(first.status == .accepted && first.headers[HTTPField.Name("Idempotent-Replayed")!] == nil)
            let id = try #require(first.json["id"] as? String)
            let seed = try #require(first.json["seed"] as? Int)
            _ = try await client.waitForJob(id)
            let again = try await client.postJSON("/api/v1/generations", request, headers: Self.key("retry-1"))
            #expect(again.status == .accepted && again.json["id"] as? String == id && again.json["seed"] as? Int == seed)
            #expect(again.json["status"] as? String == "done")
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            // Another key, or none, is another job.
            let other = try await client.postJSON("/api/v1/generations", request, headers: Self.key("retry-2"))
            let plain = try await client.postJSON("/api/v1/generations", request)
            #expect(Set([id, other.json["id"] as? String, plain.json["id"] as? String]).count == 3)
            for response in [other, plain] { _ = try await client.waitForJob(try #require(response.json["id"] as? String)) }
            #expect(engine.calls == 3)
            #expect(try await client.get("/api/v1/history").json["total"] as? Int == 3)
        }
    }

    @Test func aKeyReusedForAnotherRequestOrMalformedIsRefused() async throws {
        try await buildApplication(options(), engine: StubEngine()).test(.router) { client in
            let first = try await client.postJSON("/api/v1/generations", ["prompt": "one", "width": 64, "height": 64],
                                                  headers: Self.key("k"))
            #expect(first.status == .accepted)
            let reused = try await client.postJSON("/api/v1/generations", ["prompt": "two", "width": 64, "height": 64],
                                                   headers: Self.key("k"))
            #expect(reused.status == .unprocessableContent && reused.errorCode == "idempotency_key_reused")
            #expect(reused.errorField == "Idempotency-Key")
            for bad in [String(repeating: "x", count: 256), "has space", "ключ"] {
                let response = try await client.postJSON("/api/v1/generations", ["prompt": "x", "width": 64, "height": 64],
                                                         headers: Self.key(bad))
                #expect(response.status == .badRequest && response.errorField == "Idempotency-Key", "\(bad)")
            }
        }
    }

    @Test func openAIRetriesReturnTheFirstRequestsImages() async throws {
        let engine = StubEngine()
        try await buildApplication(options(), engine: engine).test(.router) { client in
            let request: [String: Any] = ["prompt": "a fox", "size": "64x64", "n": 2]
            let first = try await client.postJSON("/v1/images/generations", request, headers: Self.key("oa-1"))
            let second = try await client.postJSON("/v1/images/generations", request, headers: Self.key("oa-1"))
            #expect(first.status == .ok && second.status == .ok)
            let images = { (response: TestResponse) in
                (response.json["data"] as? [[String: Any]] ?? []).compactMap { $0["b64_json"] as? String }
            }
            #expect(images(first).count == 2 && images(first) == images(second))
            #expect(engine.calls == 1)
        }
    }
}
