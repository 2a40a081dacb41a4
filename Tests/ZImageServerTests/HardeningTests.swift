import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import ZImagePipeline
@testable import ZImageServer

/// Issue 8: every status code the hardening changed, through the router.
@Suite struct ArithmeticAndValidationTests {
    @Test func theTwoCrashRequestsAreRefused() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let product = try await client.postJSON("/sdapi/v1/txt2img",
                                                    ["prompt": "x", "batch_size": 4_000_000_000, "n_iter": 4_000_000_000])
            #expect(product.status == .unprocessableContent)
            #expect(product.errorField == "batch_size")
            let square = try await client.postJSON("/sdapi/v1/txt2img", ["prompt": "x", "batch_size": 3, "n_iter": 3])
            #expect(square.status == .unprocessableContent && square.errorField == "batch_size")
            #expect(square.errorMessage?.contains("limit of 8") == true, "\(square.json)")
            let iterations = try await client.postJSON("/sdapi/v1/txt2img", ["prompt": "x", "n_iter": 9])
            #expect(iterations.errorField == "n_iter")
            let page = try await client.get("/api/v1/history?page=9223372036854775807")
            #expect(page.status == .badRequest && page.errorField == "page")
            let farPage = try await client.get("/api/v1/history?page=92233720368547760&per_page=100")
            #expect(farPage.status == .badRequest && farPage.errorField == "page")
            let lastPage = try await client.get("/api/v1/history?page=1000000&per_page=100")
            #expect(lastPage.status == .ok && (lastPage.json["items"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func nonNumericPagesAre400() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            for query in ["page=abc", "page=1.5", "page=", "per_page=ten", "per_page=1e2", "page=99999999999999999999"] {
                let response = try await client.get("/api/v1/history?\(query)")
                #expect(response.status == .badRequest, "\(query)")
                #expect(response.errorField == String(query.prefix { $0 != "=" }), "\(query)")
            }
            #expect(try await client.get("/api/v1/history?per_page=101").errorField == "per_page")
        }
    }

    @Test func errorsNameTheCallersFieldAndTheServersLimit() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let native = try await client.postJSON("/api/v1/generations", ["prompt": "x", "width": 4096])
            #expect(native.status == .unprocessableContent && native.errorField == "width")
            #expect(native.errorMessage == "width 4096 is outside 64...2048", "\(native.json)")
            let truncation = try await client.postJSON("/api/v1/generations", ["prompt": "x", "cfg_truncation": 1.5])
            #expect(truncation.status == .unprocessableContent && truncation.errorField == "cfg_truncation")
            let steps = try await client.postJSON("/api/v1/generations", ["prompt": "x", "steps": 60])
            #expect(steps.errorMessage == "steps 60 is outside 1...50")
            let openAI = try await client.postJSON("/v1/images/generations", ["prompt": "x", "n": 9])
            #expect(openAI.status == .unprocessableContent && openAI.errorField == "n")
            #expect(openAI.errorMessage == "n 9 is outside 1...8", "\(openAI.json)")
            let size = try await client.postJSON("/v1/images/generations", ["prompt": "x", "size": "100x64"])
            #expect(size.status == .unprocessableContent && size.errorField == "size")
            #expect(size.errorMessage?.hasPrefix("size: width 100 is not a multiple of 16") == true, "\(size.json)")
            for text in ["64xfoox64", "64x", "x64", "64x64x64", "-64x64", "+64x64", "64 x64", "6４x64", "1e2x64", ""] {
                let refused = try await client.postJSON("/v1/images/generations", ["prompt": "x", "size": text])
                #expect(refused.status == .badRequest && refused.errorField == "size", "\(text)")
            }
            let cfg = try await client.postJSON("/sdapi/v1/txt2img", ["prompt": "x", "cfg_scale": 40])
            #expect(cfg.status == .unprocessableContent && cfg.errorField == "cfg_scale")
            #expect(cfg.errorMessage?.contains("31") == true)
            let a1111Steps = try await client.postJSON("/sdapi/v1/txt2img", ["prompt": "x", "steps": 0])
            #expect(a1111Steps.errorField == "steps")
        }
    }

    @Test func seedsAreExact64BitIntegers() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            for seed in [9_007_199_254_740_993, Int(Int64.max), Int(Int64.max) - 1] {
                let body = ByteBuffer(string: #"{"prompt":"x","width":64,"height":64,"steps":1,"seed":\#(seed)}"#)
                let response = try await client.execute(uri: "/api/v1/generations", method: .post, body: body)
                #expect(response.status == .accepted)
                #expect(response.json["seed"] as? Int == seed, "\(String(buffer: response.body))")
                let id = try #require(response.json["id"] as? String)
                let job = try await client.waitForJob(id)
                #expect((job["parameters"] as? [String: Any])?["seed"] as? Int == seed)
                #expect((job["images"] as? [[String: Any]])?.first?["seed"] as? Int == seed)
            }
            for text in ["9223372036854775808", "18446744073709551615", "1e19", "-2", "1.5", "\"7\""] {
                let body = ByteBuffer(string: #"{"prompt":"x","seed":\#(text)}"#)
                let response = try await client.execute(uri: "/api/v1/generations", method: .post, body: body)
                #expect(response.status == .badRequest && response.errorField == "seed", "\(text)")
            }
            let random = try await client.postJSON("/api/v1/generations", ["prompt": "x", "width": 64, "height": 64,
                                                                         "steps": 1, "seed": -1])
            let drawn = try #require(random.json["seed"] as? Int)
            #expect(drawn >= 0 && drawn <= Int(UInt32.max))
        }
    }

    @Test func promptsAreLimitedByBytesCharactersAndTokens() async throws {
        let app = try buildApplication(options(), engine: StubEngine(countsTokens: true))
        try await app.test(.router) { client in
            // One grapheme cluster of 60,001 scalars: one character, 120,001 bytes.
            let combining = "x" + String(repeating: "\u{0301}", count: 60_000)
            let bytes = try await client.postJSON("/api/v1/generations", ["prompt": combining])
            #expect(bytes.status == .badRequest && bytes.errorField == "prompt")
            #expect(bytes.errorMessage?.contains("40000 bytes") == true, "\(bytes.json)")
            let characters = try await client.postJSON("/sdapi/v1/txt2img", ["prompt": "x", "negative_prompt":
                                                                               String(repeating: "a", count: 10_001)])
            #expect(characters.errorField == "negative_prompt")
            #expect(characters.errorMessage?.contains("10000 characters") == true)
            // 1,200 characters and 30,000 bytes, but 8,400 scalars (tokens for the stub).
            let family = "\u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}"
            let tokens = try await client.postJSON("/v1/images/generations", ["prompt": String(repeating: family, count: 1_200)])
            #expect(tokens.status == .badRequest && tokens.errorField == "prompt")
            #expect(tokens.errorMessage?.contains("8192 tokens") == true, "\(tokens.json)")
            let nul = try await client.postJSON("/api/v1/generations", ["prompt": "a\u{0}b"])
            #expect(nul.status == .badRequest && nul.errorField == "prompt" && nul.errorMessage?.contains("NUL") == true)
            let fits = try await client.postJSON("/api/v1/generations", ["prompt": String(repeating: family, count: 1_000),
                                                                      "width": 64, "height": 64, "steps": 1])
            #expect(fits.status == .accepted)
        }
    }
}

@Suite struct ErrorsAndTrustTests {
    @Test func failuresNameNoInternals() async throws {
        struct Leaky: Error, CustomStringConvertible {
            var description: String { "SQLITE_ERROR at /secret/path/zimage.sqlite: SELECT * FROM jobs" }
        }
        let app = try buildApplication(options(), engine: StubEngine(failWith: Leaky()))
        try await app.test(.router) { client in
            for (path, body) in [("/sdapi/v1/txt2img", ["prompt": "x", "width": 64, "height": 64] as [String: Any]),
                                 ("/v1/images/generations", ["prompt": "x", "size": "64x64"])] {
                let response = try await client.postJSON(path, body)
                #expect(response.status == .internalServerError, "\(path)")
                let text = String(buffer: response.body)
                #expect(!text.contains("secret") && !text.contains("SQLITE") && !text.contains("SELECT"), "\(text)")
                #expect(response.errorMessage?.contains("request") == true, "\(text)")
            }
        }
    }

    @Test func resourceExhaustionIsUnavailableNotInternal() {
        #expect(ResourceExhaustion.matches(DatabaseError(resultCode: .SQLITE_CANTOPEN)))
        #expect(ResourceExhaustion.matches(POSIXError(.EMFILE)))
        #expect(ResourceExhaustion.matches(NSError(domain: NSCocoaErrorDomain, code: 513,
                                                   userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(ENOSPC))])))
        #expect(!ResourceExhaustion.matches(DatabaseError(resultCode: .SQLITE_CONSTRAINT)))
        #expect(!ResourceExhaustion.matches(POSIXError(.EINVAL)))
        #expect(ResourceExhaustion.matches(PNGError.fileWriteFailed(path: "/x", reason: "open: Too many open files")))
        #expect(!ResourceExhaustion.matches(PNGError.invalidTextValue(key: "parameters", reason: "contains a NUL character")))
    }

    @Test func openAIReturns409WhenAnotherClientCancels() async throws {
        let app = try buildApplication(options(), engine: StubEngine(stepDelay: .milliseconds(50)))
        try await app.test(.router) { client in
            async let answer = client.postJSON("/v1/images/generations", ["prompt": "x", "size": "64x64"])
            var running: String?
            for _ in 0..<300 {
                running = (try await client.get("/api/v1/queue").json["running"] as? [String: Any])?["id"] as? String
                if running != nil { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            let id = try #require(running)
            _ = try await client.execute(uri: "/api/v1/generations/\(id)/cancel", method: .post)
            let response = try await answer
            #expect(response.status == .conflict && response.errorCode == "cancelled")
        }
    }

    @Test func imageURLsUseThePublicURLNotTheHostHeader() async throws {
        let app = try buildApplication(options(publicURL: "https://images.example:8443/"), engine: StubEngine())
        try await app.test(.router) { client in
            // (The fuzz harness sends `Host: evil.example` on a real connection; the router test has no Host.)
            let response = try await client.postJSON("/v1/images/generations", ["prompt": "x", "size": "64x64",
                                                                              "response_format": "url"])
            let url = try #require((response.json["data"] as? [[String: Any]])?.first?["url"] as? String)
            #expect(url.hasPrefix("https://images.example:8443/api/v1/images/"), "\(url)")
        }
        var bound = options()
        bound.port = 7777
        #expect(bound.baseURL == "http://127.0.0.1:7777")
        bound.host = "0.0.0.0"
        #expect(bound.baseURL == "http://127.0.0.1:7777")
    }

    @Test func emptyOrBadSettingsAreRefused() {
        for key in ["", "  ", "has space", "tab\tkey", "é"] {
            #expect(throws: ServerOptionsError.self, "\(key)") {
                try buildApplication(options(apiKey: key), engine: StubEngine())
            }
        }
        for url in ["ftp://x", "images.example", "http://", "http://x/path", "http://x/?q=1"] {
            #expect(throws: ServerOptionsError.self, "\(url)") {
                try buildApplication(options(publicURL: url), engine: StubEngine())
            }
        }
    }

    @Test func authSchemesAreCaseInsensitive() async throws {
        let app = try buildApplication(options(apiKey: "s3cret"), engine: StubEngine())
        try await app.test(.router) { client in
            let basic = Data("user:s3cret".utf8).base64EncodedString()
            for header in ["bearer s3cret", "BEARER s3cret", "Bearer  s3cret", "basic \(basic)", "BASIC \(basic)"] {
                let status = try await client.get("/api/v1/system", headers: [.authorization: header]).status
                #expect(status == .ok, "\(header)")
            }
            for header in ["Bearer", "Bearers3cret", "Token s3cret", "bearer S3CRET", ""] {
                let status = try await client.get("/api/v1/system", headers: [.authorization: header]).status
                #expect(status == .unauthorized, "\(header)")
            }
        }
    }

    @Test func optionsKeepOnlyKnownSmallKeys() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let big = String(repeating: "x", count: 500_000)
            #expect(try await client.postJSON("/sdapi/v1/options", ["unknown": big, "another": [1, 2]]).status == .ok)
            let stored = try await client.get("/sdapi/v1/options").json
            #expect(stored["unknown"] == nil && stored["another"] == nil)
            let tooBig = try await client.postJSON("/sdapi/v1/options", ["samples_format": big])
            #expect(tooBig.status == .badRequest && tooBig.errorField == "samples_format")
            #expect(try await client.postJSON("/sdapi/v1/options", ["samples_format": "png"]).status == .ok)
            #expect(try await client.postJSON("/sdapi/v1/options", ["sd_model_checkpoint": "other"]).status == .ok)
            #expect(try await client.get("/sdapi/v1/options").json["sd_model_checkpoint"] as? String == "stub-model")
        }
    }

    @Test func truncatedPromptsAreReported() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let a1111 = try await client.postJSON("/sdapi/v1/txt2img", ["prompt": "LONG prompt", "width": 64, "height": 64])
            let info = try #require(try JSONSerialization.jsonObject(with: Data((a1111.json["info"] as? String ?? "").utf8))
                as? [String: Any])
            #expect(info["prompt_truncated"] as? Bool == true)
            for (prompt, truncated) in [("LONG one", true), ("short", false)] {
                let id = try #require(try await client.postJSON("/api/v1/generations", ["prompt": prompt, "width": 64,
                                                                                       "height": 64, "steps": 1]).json["id"] as? String)
                let job = try await client.waitForJob(id)
                #expect(job["prompt_truncated"] as? Bool == truncated, "\(prompt)")
            }
        }
    }

    @Test func progressEventsAreTypedAndRenderAsBefore() {
        let progress = JobProgress(step: 2, steps: 8, image: 1, images: 2, previewPNG: [1, 2, 3])
        let event = JobEvent(kind: .progress, payload: .progress(progress))
        let object = (try? JSONSerialization.jsonObject(with: Data(event.data.utf8))) as? [String: Any]
        #expect(object?["step"] as? Int == 2 && object?["steps"] as? Int == 8 && object?["images"] as? Int == 2)
        #expect(object?["preview"] as? String == "data:image/png;base64,AQID")
        #expect(event.progress == progress)
        #expect(JobEvent(kind: .queued, payload: .position(3)).data == #"{"position":3}"#)
        #expect(JobEvent(kind: .failed, payload: .error("a \"b\"")).data == #"{"error":"a \"b\""}"#)
    }
}

/// The web UI's files: ranges, HEAD, symlinks, no redirects.
@Suite struct StaticFilesTests {
    static func folder() throws -> String {
        let root = NSTemporaryDirectory() + "zimage-static-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        try Data("0123456789".utf8).write(to: URL(fileURLWithPath: root + "/ten.txt"))
        try Data().write(to: URL(fileURLWithPath: root + "/empty.txt"))
        try Data("<!doctype html>".utf8).write(to: URL(fileURLWithPath: root + "/index.html"))
        try Data("<!doctype html>sub".utf8).write(to: URL(fileURLWithPath: root + "/sub/index.html"))
        try FileManager.default.createSymbolicLink(atPath: root + "/leak", withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: root + "/inside", withDestinationPath: root + "/ten.txt")
        return root
    }

    @Test func rangesAreRightOr416() async throws {
        let app = try buildApplication(options(publicDirectory: try Self.folder()), engine: StubEngine())
        try await app.test(.router) { client in
            let cases: [(String, HTTPResponse.Status, String?, String?)] = [
                ("bytes=0-3", .partialContent, "0123", "bytes 0-3/10"), ("bytes=-3", .partialContent, "789", "bytes 7-9/10"),
                ("bytes=7-", .partialContent, "789", "bytes 7-9/10"), ("bytes=5-100", .partialContent, "56789", "bytes 5-9/10"),
                ("bytes=-100", .partialContent, "0123456789", "bytes 0-9/10"),
                ("bytes=999999-", .rangeNotSatisfiable, nil, "bytes */10"), ("bytes=10-", .rangeNotSatisfiable, nil, "bytes */10"),
                ("bytes=-0", .rangeNotSatisfiable, nil, "bytes */10"),
                ("bytes=99999999999999999999999-", .rangeNotSatisfiable, nil, "bytes */10"),
                ("bytes=5-1", .ok, "0123456789", nil), ("bytes=0-1,3-4", .ok, "0123456789", nil), ("lines=1-2", .ok, "0123456789", nil),
            ]
            for (range, status, body, contentRange) in cases {
                let response = try await client.get("/ten.txt", headers: [.range: range])
                #expect(response.status == status, "\(range)")
                if let body { #expect(String(buffer: response.body) == body, "\(range)") }
                #expect(response.headers[.contentRange] == contentRange, "\(range)")
                #expect(Int(response.headers[.contentLength] ?? "0") ?? -1 >= 0, "\(range)")
            }
            for range in ["bytes=0-", "bytes=-1"] {
                #expect(try await client.get("/empty.txt", headers: [.range: range]).status == .rangeNotSatisfiable)
            }
            #expect(try await client.get("/empty.txt").status == .ok)
        }
    }

    @Test func headSymlinksAndRedirects() async throws {
        let app = try buildApplication(options(publicDirectory: try Self.folder()), engine: StubEngine())
        try await app.test(.router) { client in
            let head = try await client.execute(uri: "/ten.txt", method: .head)
            #expect(head.status == .ok && head.body.readableBytes == 0 && head.headers[.contentLength] == "10")
            let apiHead = try await client.execute(uri: "/api/v1/system", method: .head)
            #expect(apiHead.status == .ok && apiHead.body.readableBytes == 0)
            #expect(try await client.get("/leak").status == .notFound)
            #expect(try await client.get("/inside").status == .ok)
            #expect(String(buffer: try await client.get("/sub/").body) == "<!doctype html>sub")
            for path in ["//evil.example", "//evil.example/", "/sub", "/%2e%2e/etc/passwd", "/sub/../ten.txt"] {
                let response = try await client.get(path)
                #expect(response.headers[.location] == nil, "\(path)")
                #expect(response.status == .notFound, "\(path): \(response.status)")
            }
            #expect(try await client.execute(uri: "/ten.txt", method: .post).status != .ok)
        }
    }
}

/// Raw HTTP/1 framing, through the real server (`GuardedHTTP1Channel`).
@Suite struct FramingTests {
    /// Sends raw bytes to the live server and returns the status line of the reply. The blocking
    /// socket calls run on a Dispatch thread: on Swift's cooperative pool (two threads here) they
    /// would starve the in-process server that must answer them.
    static func exchange(_ port: Int, _ request: String) async -> String {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: blockingExchange(port, request)) }
        }
    }

    static func blockingExchange(_ port: Int, _ request: String) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        // Generous: in the full suite, CPU-heavy tests can keep the cooperative pool busy for a while.
        var timeout = timeval(tv_sec: 90, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return "connect failed" }
        _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return "" }
        return String(decoding: buffer[..<count], as: UTF8.self).components(separatedBy: "\r\n").first ?? ""
    }

    @Test func framingTheApplicationMustNotSeeIsAnsweredOnTheConnection() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let host = "Host: 127.0.0.1\r\n"
            let cases: [(String, String)] = [
                ("POST /api/v1/generations HTTP/1.1\r\n\(host)Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 501"),
                ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "HTTP/1.1 405"),
                ("POST /api/v1/generations HTTP/1.1\r\n\(host)Expect: teapot\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 417"),
                ("POST /api/v1/generations HTTP/1.1\r\n\(host)Expect: 100-continue\r\nContent-Length: 2\r\n\r\n", "HTTP/1.1 100"),
                ("GET /health HTTP/1.1\r\n\(host)Content-Length: -1\r\n\r\n", "HTTP/1.1 400"),
                ("\u{01}\u{02} nonsense\r\n\r\n", "HTTP/1.1 400"),
                ("GET /health HTTP/1.1\r\n\(host)\r\n", "HTTP/1.1 200"),
            ]
            for (request, expected) in cases {
                let line = await Self.exchange(port, request)
                #expect(line.hasPrefix(expected), "\(request.prefix(60)): \(line)")
            }
        }
    }

    @Test func connectionsAboveTheCapGet503() async throws {
        var settings = options()
        settings.connections.maxConnections = 40
        #expect(settings.connections.servedConnections == 38)
        let app = try buildApplication(settings, engine: StubEngine())
        try await app.test(.live) { client in
            let port = try #require(client.port)
            // Hold 38 idle connections open; the next accepted ones are refused with 503.
            var held: [Int32] = []
            defer { for fd in held { close(fd) } }
            for _ in 0..<38 {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                _ = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                held.append(fd)
            }
            // The server accepts the held connections asynchronously; ask until it has them all.
            var line = ""
            for _ in 0..<60 {
                try await Task.sleep(for: .milliseconds(500))
                line = await Self.exchange(port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                if line.hasPrefix("HTTP/1.1 503") { break }
            }
            #expect(line.hasPrefix("HTTP/1.1 503"), "\(line)")
            for fd in held { close(fd) }
            held = []
            try await Task.sleep(for: .milliseconds(300))
            let after = await Self.exchange(port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(after.hasPrefix("HTTP/1.1 200"), "\(after)")
        }
    }

    @Test func limitsFollowTheDescriptorLimit() {
        var limits = ConnectionLimits()
        #expect(limits.acceptedConnections < ConnectionLimits.descriptorLimit)
        #expect(limits.servedConnections < limits.acceptedConnections)
        limits.maxConnections = 0
        #expect(limits.acceptedConnections == 1 && limits.servedConnections == 1)
    }
}
