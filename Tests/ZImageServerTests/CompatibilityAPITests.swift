import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import ZImagePipeline
@testable import ZImageServer

@Suite struct A1111APITests {
    /// What `webuiapi.txt2img()` sends by default (SD-era values) plus a few extras.
    static var webuiapiBody: [String: Any] { [
        "prompt": "a fox", "negative_prompt": "", "styles": [], "seed": 11, "subseed": -1, "subseed_strength": 0.0,
        "batch_size": 2, "n_iter": 1, "steps": 20, "cfg_scale": 7.0, "width": 64, "height": 64,
        "restore_faces": false, "tiling": false, "do_not_save_samples": false, "do_not_save_grid": false,
        "eta": 1.0, "sampler_name": "Euler a", "scheduler": "Automatic", "send_images": true, "save_images": false,
        "alwayson_scripts": [:], "override_settings": [:], "some_future_field": [1, 2, 3],
    ] }

    @Test func txt2imgAnswersWithImagesAndSeeds() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let response = try await client.postJSON("/sdapi/v1/txt2img", Self.webuiapiBody)
            #expect(response.status == .ok)
            let images = try #require(response.json["images"] as? [String])
            #expect(images.count == 2)
            let png = try #require(Data(base64Encoded: images[1]))
            #expect(try PNGDecoder.decode([UInt8](png)).text["parameters"]?.contains("Seed: 12") == true)
            let infoText = try #require(response.json["info"] as? String)
            let info = try #require(try JSONSerialization.jsonObject(with: Data(infoText.utf8)) as? [String: Any])
            #expect(info["seed"] as? Int == 11 && info["all_seeds"] as? [Int] == [11, 12])
            #expect((info["infotexts"] as? [String])?.count == 2)
            // SD defaults (20 steps, CFG 7) become Turbo's (8 steps, guidance off = CFG 1).
            let parameters = try #require(response.json["parameters"] as? [String: Any])
            #expect(parameters["steps"] as? Int == 8 && parameters["cfg_scale"] as? Double == 1)
            #expect(parameters["sampler_name"] as? String == "Euler")
        }
    }

    @Test func explicitValuesAreKeptAndCFGIsShifted() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            var request = Self.webuiapiBody
            (request["steps"], request["cfg_scale"], request["batch_size"]) = (4, 2.5, 1)
            let response = try await client.postJSON("/sdapi/v1/txt2img", request)
            let parameters = try #require(response.json["parameters"] as? [String: Any])
            #expect(parameters["steps"] as? Int == 4 && parameters["cfg_scale"] as? Double == 2.5)
            let history = try await client.get("/api/v1/history").json
            let job = try #require((history["items"] as? [[String: Any]])?.first)
            #expect((job["parameters"] as? [String: Any])?["guidance_scale"] as? Double == 1.5)
            // "as_sent" keeps even the exact SD defaults.
            #expect(try await client.postJSON("/sdapi/v1/options", ["zimage_sd_defaults": "as_sent"]).status == .ok)
            var sd = Self.webuiapiBody
            sd["batch_size"] = 1
            let kept = try await client.postJSON("/sdapi/v1/txt2img", sd).json["parameters"] as? [String: Any]
            #expect(kept?["steps"] as? Int == 20)
            #expect(try await client.postJSON("/sdapi/v1/options", ["zimage_sd_defaults": "maybe"]).status == .badRequest)
        }
    }

    @Test func refusalsNameTheField() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let cases: [([String: Any], String)] = [
                (["prompt": "x", "width": 100], "width"), (["prompt": "x", "steps": "many"], "steps"),
                (["prompt": "x", "n_iter": 0], "n_iter"), (["prompt": "x", "batch_size": 5, "n_iter": 2], "batch_size"),
            ]
            for (request, field) in cases {
                let response = try await client.postJSON("/sdapi/v1/txt2img", request)
                #expect(response.errorField == field, "\(request)")
            }
        }
    }

    @Test func progressInterruptAndListings() async throws {
        let app = try buildApplication(options(), engine: StubEngine(stepDelay: .milliseconds(50)))
        try await app.test(.router) { client in
            let idle = try await client.get("/sdapi/v1/progress").json
            #expect(idle["progress"] as? Double == 0)
            let id = try #require(try await client.postJSON("/api/v1/generations", ["prompt": "a", "width": 64,
                                                                                   "height": 64, "steps": 40]).json["id"] as? String)
            #expect(try await client.waitForStatus(id, "running"))
            var busy: [String: Any] = [:]
            for _ in 0..<300 {
                busy = try await client.get("/sdapi/v1/progress").json
                if (busy["progress"] as? Double ?? 0) > 0 { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            let fraction = try #require(busy["progress"] as? Double)
            #expect(fraction > 0 && fraction < 1)
            #expect((busy["state"] as? [String: Any])?["job"] as? String == id)
            #expect(try await client.execute(uri: "/sdapi/v1/interrupt", method: .post).status == .ok)
            #expect(try await client.waitForJob(id)["status"] as? String == "cancelled")

            #expect(try await client.get("/sdapi/v1/sd-models").jsonArray.first?["title"] as? String == "stub-model")
            #expect(try await client.get("/sdapi/v1/samplers").jsonArray.first?["name"] as? String == "Euler")
            let options = try await client.get("/sdapi/v1/options").json
            #expect(options["sd_model_checkpoint"] as? String == "stub-model")
            #expect(try await client.postJSON("/sdapi/v1/options", ["samples_format": "png", "unknown": 1]).status == .ok)
        }
    }
}

/// `/sdapi/v1/sd-models` lists the served model, then the diffusers pipelines in the Hugging Face
/// cache (a tree laid out as huggingface_hub lays it out: `refs/`, `snapshots/<commit>/`).
@Suite struct SDModelsListingTests {
    @Test func hubCachePipelinesAreListed() async throws {
        let cache = temporaryDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let files = FileManager.default
        func snapshot(_ repo: String, revision: String, commit: String, pipeline: Bool) throws {
            let storage = cache + "/models--" + repo.replacingOccurrences(of: "/", with: "--")
            try files.createDirectory(atPath: storage + "/refs", withIntermediateDirectories: true)
            try Data(commit.utf8).write(to: URL(fileURLWithPath: storage + "/refs/" + revision))
            try files.createDirectory(atPath: storage + "/snapshots/" + commit, withIntermediateDirectories: true)
            if pipeline { try Data("{}".utf8).write(to: URL(fileURLWithPath: storage + "/snapshots/\(commit)/model_index.json")) }
        }
        let a = String(repeating: "a", count: 40), b = String(repeating: "b", count: 40)
        try snapshot("Tongyi-MAI/Z-Image-Turbo", revision: "main", commit: a, pipeline: true)
        try snapshot("Tongyi-MAI/Z-Image-Turbo", revision: "v2", commit: b, pipeline: true)
        try snapshot("Qwen/Qwen3-4B", revision: "main", commit: b, pipeline: false)   // not a diffusers pipeline
        var serverOptions = options()
        serverOptions.hubCacheDirectory = cache
        let app = try buildApplication(serverOptions, engine: StubEngine())
        try await app.test(.router) { client in
            let models = try await client.get("/sdapi/v1/sd-models").jsonArray
            #expect(models.compactMap { $0["title"] as? String } == [
                "stub-model", "Tongyi-MAI/Z-Image-Turbo [aaaaaaaaaa]", "Tongyi-MAI/Z-Image-Turbo@v2 [bbbbbbbbbb]",
            ])
            #expect(models[1]["model_name"] as? String == "Tongyi-MAI/Z-Image-Turbo")
            #expect(models[1]["hash"] as? String == "aaaaaaaaaa")
            #expect(models[1]["filename"] as? String == cache + "/models--Tongyi-MAI--Z-Image-Turbo/snapshots/" + a)
        }
        // Without a cache, the served model alone.
        let plain = try buildApplication(options(), engine: StubEngine())
        try await plain.test(.router) { client in
            let models = try await client.get("/sdapi/v1/sd-models").jsonArray
            #expect(models.count == 1)
        }
    }
}

@Suite struct OpenAIAPITests {
    @Test func generationsInBothFormats() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let b64 = try await client.postJSON("/v1/images/generations",
                                                ["prompt": "a fox", "n": 2, "size": "64x80", "model": "whatever",
                                                 "quality": "hd"])
            let items = try #require(b64.json["data"] as? [[String: Any]])
            #expect(items.count == 2)
            let encoded = try #require(items[0]["b64_json"] as? String)
            let png = try #require(Data(base64Encoded: encoded))
            #expect(try PNGDecoder.decode([UInt8](png)).image.width == 64)
            let url = try await client.postJSON("/v1/images/generations",
                                                ["prompt": "a fox", "size": "64x64", "response_format": "url"])
            let link = try #require((url.json["data"] as? [[String: Any]])?.first?["url"] as? String)
            #expect(link.hasPrefix("http://") && link.contains("/api/v1/images/"))
            let path = try #require(link.range(of: "/api/v1/images/").map { String(link[$0.lowerBound...]) })
            #expect(try await client.get(path).headers[.contentType] == "image/png")
            let models = try await client.get("/v1/models").json
            #expect((models["data"] as? [[String: Any]])?.first?["id"] as? String == "stub-model")
        }
    }

    @Test func refusals() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let cases: [([String: Any], String)] = [
                (["n": 1], "prompt"), (["prompt": "x", "n": 11], "n"), (["prompt": "x", "size": "big"], "size"),
                (["prompt": "x", "size": "100x100"], "size"), (["prompt": "x", "response_format": "jpeg"], "response_format"),
            ]
            for (request, field) in cases {
                let response = try await client.postJSON("/v1/images/generations", request)
                #expect(response.errorField == field, "\(request)")
            }
        }
    }
}

@Suite struct AuthenticationTests {
    @Test func everyRouteNeedsTheKey() async throws {
        let app = try buildApplication(options(apiKey: "s3cret"), engine: StubEngine())
        try await app.test(.router) { client in
            for path in ["/", "/api/v1/system", "/sdapi/v1/options", "/v1/models", "/metrics", "/api/v1/history"] {
                let refused = try await client.get(path)
                #expect(refused.status == .unauthorized, "\(path)")
                #expect(refused.headers[.wwwAuthenticate]?.hasPrefix("Basic") == true)
            }
            #expect(try await client.get("/api/v1/system", headers: [.authorization: "Bearer wrong"]).status == .unauthorized)
            #expect(try await client.get("/api/v1/system", headers: [.authorization: "Bearer s3cret"]).status == .ok)
            let basic = "Basic " + Data("user:s3cret".utf8).base64EncodedString()
            #expect(try await client.get("/sdapi/v1/options", headers: [.authorization: basic]).status == .ok)
            let wrongBasic = "Basic " + Data("user:nope".utf8).base64EncodedString()
            #expect(try await client.get("/sdapi/v1/options", headers: [.authorization: wrongBasic]).status == .unauthorized)
        }
    }
}

/// Every path and method the OpenAPI document lists answers with a status it documents.
@Suite struct OpenAPIConformanceTests {
    @Test func documentedRoutesAnswerAsDocumented() async throws {
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let spec = try await client.get("/api/v1/openapi.json").json
            let paths = try #require(spec["paths"] as? [String: [String: Any]])
            let id = try #require(try await client.postJSON("/api/v1/generations", ["prompt": "a", "width": 64,
                                                                                   "height": 64, "steps": 1]).json["id"] as? String)
            let job = try await client.waitForJob(id)
            let imageID = try #require((job["images"] as? [[String: Any]])?.first?["id"] as? String)
            var checked = 0
            for (template, operations) in paths.sorted(by: { $0.key < $1.key }) {
                for (method, operation) in operations.sorted(by: { $0.key < $1.key }) {
                    let documented = Set(((operation as? [String: Any])?["responses"] as? [String: Any])?.keys.map { $0 } ?? [])
                    let uri = template.replacingOccurrences(of: "{id}", with: template.contains("images") ? imageID : id)
                    let response: TestResponse
                    switch method {
                    case "post" where template.hasSuffix("/generations"):
                        response = try await client.postJSON(uri, ["prompt": "b", "width": 64, "height": 64, "steps": 1])
                    case "post": response = try await client.execute(uri: uri, method: .post)
                    case "delete": response = try await client.execute(uri: uri, method: .delete)
                    default: response = try await client.get(uri)
                    }
                    #expect(documented.contains(String(response.status.code)), "\(method) \(uri): \(response.status)")
                    checked += 1
                }
            }
            #expect(checked == 14)  // 12 + GET /api/v1/loras + GET /api/v1/hardware
        }
    }
}
