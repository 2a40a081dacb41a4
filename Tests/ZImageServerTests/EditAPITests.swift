import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import ZImageCPU
import ZImagePipeline
import ZImageTensor
import ZImageTestSupport
import ZImageWeights
@testable import ZImageServer

/// img2img, inpainting and LoRAs through the A1111, OpenAI and native APIs, on the real tiny
/// model (`PipelineEngine`) with the fixture LoRA folder: the answers are diffusers' images
/// (stages/*.safetensors) within the pixel bounds, and bad input is a 4xx naming the field.
@Suite(.serialized) struct EditAPITests {
    static let engine: PipelineEngine? = {
        guard let pipeline = try? ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: CPUBackend()) else {
            return nil
        }
        return PipelineEngine(pipeline: pipeline, modelName: "tiny", deviceDescription: "cpu", isDemoModel: false,
                              loraLibrary: LoRALibrary(directory: Fixtures.path("lora")))
    }()

    static func base64(_ name: String) throws -> String {
        try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images/\(name)"))).base64EncodedString()
    }

    static func expectGolden(_ png: Data, _ fixture: String) throws {
        let image = try PNGDecoder.decode([UInt8](png)).image
        let golden = try SafetensorsFile(path: Fixtures.path("stages/\(fixture).safetensors"))
            .tensor("image_uint8", on: CPUBackend()).toBytes()
        #expect(image.pixels.count == golden.count)
        let worst = zip(image.pixels, golden).map { abs(Int($0) - Int($1)) }.max() ?? 99
        #expect(worst <= 2, "\(fixture): a pixel is off by \(worst)")
    }

    static func firstImage(_ response: TestResponse) throws -> Data {
        let images = try #require(response.json["images"] as? [String], "\(String(buffer: response.body))")
        return try #require(Data(base64Encoded: images[0]))
    }

    @Test func a1111Img2imgAndInpainting() async throws {
        let engine = try #require(Self.engine)
        let app = try buildApplication(options(), engine: engine)
        try await app.test(.router) { client in
            var request: [String: Any] = [
                "prompt": "a red fox in the snow", "init_images": [try Self.base64("init.png")], "seed": 42,
                "steps": 8, "cfg_scale": 1, "denoising_strength": 0.6, "sampler_name": "Euler a",
                "resize_mode": 0, "mask_blur": 4, "inpainting_fill": 1, "inpaint_full_res": true,
            ]
            var response = try await client.postJSON("/sdapi/v1/img2img", request)
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            try Self.expectGolden(try Self.firstImage(response), "pipeline_img2img")
            let info = String(describing: response.json["info"] ?? "")
            #expect(info.contains("Denoising strength: 0.6"), "\(info)")
            request["mask"] = try Self.base64("mask.png")
            request["denoising_strength"] = 0.75
            response = try await client.postJSON("/sdapi/v1/img2img", request)
            try Self.expectGolden(try Self.firstImage(response), "pipeline_inpaint")
            // Bad input: not an image, no image, a strength of 0 (no step to run).
            request["init_images"] = ["bm90IGFuIGltYWdl"]
            response = try await client.postJSON("/sdapi/v1/img2img", request)
            #expect(response.status == .badRequest && response.errorField == "init_images")
            #expect(response.errorMessage == "init_images is not a PNG image")
            request["init_images"] = []
            response = try await client.postJSON("/sdapi/v1/img2img", request)
            #expect(response.status == .badRequest && response.errorField == "init_images")
            request["init_images"] = [try Self.base64("init.png")]
            request["denoising_strength"] = 0
            response = try await client.postJSON("/sdapi/v1/img2img", request)
            #expect(response.status == .unprocessableContent && response.errorField == "denoising_strength")
        }
    }

    @Test func a1111LoRATagsAndList() async throws {
        let engine = try #require(Self.engine)
        let app = try buildApplication(options(), engine: engine)
        try await app.test(.router) { client in
            let list = try await client.get("/sdapi/v1/loras").jsonArray.compactMap { $0["name"] as? String }
            #expect(list.contains("kohya") && list.contains("lokr"), "\(list)")
            var response = try await client.postJSON("/sdapi/v1/txt2img", [
                "prompt": "<lora:kohya:0.8><lora:lokr:0.5>a red fox in the snow", "seed": 42, "steps": 8, "cfg_scale": 1,
                "width": 64, "height": 64,
            ])
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            try Self.expectGolden(try Self.firstImage(response), "pipeline_lora_two")
            let info = String(describing: response.json["info"] ?? "")
            #expect(info.contains("Lora hashes: \\\"kohya: 07f54635f4b5, lokr: "), "\(info)")
            response = try await client.postJSON("/sdapi/v1/txt2img", ["prompt": "<lora:nope:1>fox", "width": 64,
                                                                      "height": 64])
            #expect(response.status == .unprocessableContent && response.errorField == "lora")
            #expect(response.errorMessage == "no LoRA named 'nope' in this server's LoRA folder")
            // The LoRA folder holds one file diffusers refuses: the job fails naming the key.
            response = try await client.postJSON("/api/v1/generations", [
                "prompt": "fox", "width": 64, "height": 64, "loras": [["name": "unknown_key", "strength": 1]],
            ])
            #expect(response.status == .accepted)
            let id = try #require(response.json["id"] as? String)
            let job = try await client.waitForJob(id)
            #expect(job["status"] as? String == "failed")
            #expect((job["error"] as? String)?.contains("lora_mid") == true, "\(job)")
        }
    }

    @Test func openAIEditsWithMultipart() async throws {
        let engine = try #require(Self.engine)
        let app = try buildApplication(options(), engine: engine)
        try await app.test(.router) { client in
            let boundary = "zimage-test-boundary"
            func form(_ fields: [(String, String?, Data)]) -> ByteBuffer {
                var data = Data()
                for (name, filename, body) in fields {
                    data.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"".utf8))
                    if let filename { data.append(Data("; filename=\"\(filename)\"\r\nContent-Type: image/png".utf8)) }
                    data.append(Data("\r\n\r\n".utf8))
                    data.append(body)
                    data.append(Data("\r\n".utf8))
                }
                data.append(Data("--\(boundary)--\r\n".utf8))
                return ByteBuffer(bytes: data)
            }
            let image = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images/init.png")))
            let mask = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images/mask.png")))
            let headers: HTTPFields = [.contentType: "multipart/form-data; boundary=\(boundary)"]
            var response = try await client.execute(uri: "/v1/images/edits", method: .post, headers: headers, body: form([
                ("image", "init.png", image), ("mask", "mask.png", mask), ("prompt", nil, Data("a red fox in the snow".utf8)),
                ("n", nil, Data("1".utf8)), ("seed", nil, Data("42".utf8)),
            ]))
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            let data = try #require(response.json["data"] as? [[String: Any]])
            let png = try #require((data.first?["b64_json"] as? String).flatMap { Data(base64Encoded: $0) })
            try Self.expectGolden(png, "pipeline_inpaint_full")
            response = try await client.execute(uri: "/v1/images/edits", method: .post, headers: headers, body: form([
                ("prompt", nil, Data("x".utf8)),
            ]))
            #expect(response.status == .badRequest && response.errorField == "image")
            response = try await client.postJSON("/v1/images/edits", ["prompt": "x"])
            #expect(response.status == .badRequest)
        }
    }

    @Test func multipartPartsAndAlphaMasks() throws {
        let body = Data("--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nfox\r\n--b\r\nContent-Disposition: form-data; name=\"image[]\"; filename=\"a.png\"\r\n\r\n\u{1}\u{2}\r\n--b--\r\n".utf8)
        let form = try MultipartForm(body, boundary: "b")
        #expect(form.text("prompt") == "fox")
        #expect(form.part("image")?.body == Data([1, 2]) && form.part("image")?.filename == "a.png")
        #expect(MultipartForm.boundary(contentType: "multipart/form-data; boundary=\"x y\"") == "x y")
        #expect(MultipartForm.boundary(contentType: "application/json") == nil)
        #expect(throws: (any Error).self) { try MultipartForm(Data("junk".utf8), boundary: "b") }
    }
}
