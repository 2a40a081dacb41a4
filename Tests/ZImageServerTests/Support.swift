import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import NIOCore
import Testing
import ZImagePipeline
@testable import ZImageServer

/// A fast, controllable engine: solid-colour images, a configurable pause per step, honouring cancellation.
final class StubEngine: GenerationEngine, @unchecked Sendable {
    let modelName = "stub-model"
    let deviceDescription = "stub"
    let isDemoModel = false
    let stepDelay: Duration
    let failWith: (any Error)?
    private let lock = NSLock()
    private var _calls = 0
    var calls: Int { lock.withLock { _calls } }

    /// Counts Unicode scalars as tokens when set (the server's token limit): like a byte-level
    /// tokenizer, one grapheme can be many tokens.
    let countsTokens: Bool

    init(stepDelay: Duration = .milliseconds(1), failWith: (any Error)? = nil, countsTokens: Bool = false) {
        self.stepDelay = stepDelay
        self.failWith = failWith
        self.countsTokens = countsTokens
    }

    var tokenCount: (@Sendable (String) -> Int)? {
        guard countsTokens else { return nil }
        return { text in text.unicodeScalars.count }
    }

    func generate(_ p: GenerationParameters, progress: @escaping @Sendable (GenerationProgress) -> Bool) async throws
        -> [GeneratedImage] {
        lock.withLock { _calls += 1 }
        if let failWith { throw failWith }
        var images: [GeneratedImage] = []
        for index in 0..<p.batchSize {
            for step in 1...p.steps {
                try await Task.sleep(for: stepDelay)
                let preview = step % 2 == 0 ? RGBImage(width: 4, height: 4) : nil
                guard progress(GenerationProgress(stage: .denoising, image: index, step: step, steps: p.steps,
                                                  preview: preview)) else { throw GenerationError.cancelled }
            }
            let seed = Seed.of(image: index, first: p.seed ?? 0)
            let shade = UInt8(truncatingIfNeeded: seed)
            images.append(GeneratedImage(image: RGBImage(width: p.width, height: p.height,
                                                         pixels: [UInt8](repeating: shade, count: p.width * p.height * 3)),
                                         seed: seed, infotext: Infotext.render(p, seed: seed, model: modelName, version: "test"),
                                         promptTruncated: p.prompt.hasPrefix("LONG")))
        }
        return images
    }

    func memory() -> (used: Int, total: Int)? { (1, 2) }
}

func temporaryDataDirectory() -> String {
    NSTemporaryDirectory() + "zimage-server-tests-\(UUID().uuidString)"
}

func options(_ directory: String = temporaryDataDirectory(), apiKey: String? = nil, maxQueue: Int = 32,
             publicDirectory: String? = nil, publicURL: String? = nil) -> ServerOptions {
    var options = ServerOptions(dataDirectory: directory)
    options.apiKey = apiKey
    options.maxQueue = maxQueue
    options.publicDirectory = publicDirectory
    options.publicURL = publicURL
    // A loaded machine (the whole suite runs in parallel on two cores) can delay a test client's
    // first bytes by many seconds; the default timeouts are exercised by Tests/e2e/fuzz_server.py.
    options.connections.headerTimeout = 300
    options.connections.idleTimeout = 300
    return options
}

extension TestResponse {
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
    }
    var jsonArray: [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [[String: Any]] ?? []
    }
    var errorField: String? { (json["error"] as? [String: Any])?["field"] as? String }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
}

func body(_ object: Any) -> ByteBuffer {
    ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: object)) ?? Data())
}

extension TestClientProtocol {
    func postJSON(_ uri: String, _ object: Any, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .post, headers: headers, body: body(object))
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }

    /// Polls until the job has `status` (returns false after ~5 s).
    @discardableResult
    func waitForStatus(_ id: String, _ status: String) async throws -> Bool {
        for _ in 0..<500 {
            if try await get("/api/v1/generations/\(id)").json["status"] as? String == status { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// Polls a job until it leaves queued/running.
    func waitForJob(_ id: String, headers: HTTPFields = [:]) async throws -> [String: Any] {
        for _ in 0..<500 {
            let job = try await get("/api/v1/generations/\(id)", headers: headers).json
            if let status = job["status"] as? String, status != "queued", status != "running" { return job }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("job \(id) did not finish")
        return [:]
    }
}
