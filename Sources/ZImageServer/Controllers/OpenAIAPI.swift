import Foundation
import Hummingbird
import ZImagePipeline

/// OpenAI-compatible `POST /v1/images/generations` and `GET /v1/models`.
/// `size` is "WxH" (multiples of 16) or "auto" (1024x1024); `n` images (seeds seed, seed+1, ...,
/// random first seed); `response_format` "b64_json" (default) or "url" (this server's image URL);
/// other fields (`model`, `quality`, `style`, `user`, `output_format`, ...) are accepted and ignored.
struct OpenAIAPI: Sendable {
    let service: GenerationService
    let store: any JobStore
    let engine: any GenerationEngine
    let limits: GenerationLimits
    /// Where image URLs point (`--public-url`, else the bound address); never the client's `Host`.
    let publicURL: String

    func register(on router: Router<ZImageRequestContext>) {
        router.post("v1/images/generations") { request, context in try await self.generate(request, context: context) }
        router.post("v1/images/edits") { request, context in try await self.edit(request, context: context) }
        router.get("v1/models") { _, _ in
            Response.json(["object": "list", "data": [["id": self.engine.modelName, "object": "model",
                                                       "created": 1_764_000_000, "owned_by": "zimage"]]])
        }
    }

    /// `"WxH"` (digits only) or `"auto"`; nil when the text is neither.
    static func size(_ text: String) -> (width: Int, height: Int)? {
        if text == "auto" { return (1024, 1024) }
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.count <= 6 && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let width = Int(parts[0]), let height = Int(parts[1]) else { return nil }
        return (width, height)
    }

    /// Generation parameters from an `images/generations` body, validated in OpenAI's terms.
    func parameters(from json: RequestJSON) throws -> GenerationParameters {
        guard let prompt = try json.string("prompt"), !prompt.isEmpty else {
            throw APIError.badRequest("prompt", "prompt is required")
        }
        var p = GenerationParameters(prompt: prompt)
        guard let size = Self.size(try json.string("size") ?? "auto") else {
            throw APIError.badRequest("size", "size must be \"WIDTHxHEIGHT\" (for example \"1024x1024\") or \"auto\"")
        }
        (p.width, p.height) = size
        p.batchSize = try json.int("n") ?? 1
        p.seed = try ParameterCheck.seed(try json.int("seed"))
        try ParameterCheck.validate(p, limits: limits, names: .openAI, engine: engine)
        return p
    }

    func generate(_ request: Request, context: ZImageRequestContext) async throws -> Response {
        let json = try await RequestJSON.read(request, context: context)
        let p = try parameters(from: json)
        return try await respond(p, format: try json.string("response_format") ?? "b64_json", request: request,
                                 body: json.object)
    }

    /// `images/edits` (multipart): `image` (PNG; `image[]` too, the first is used), optional `mask`
    /// (PNG whose fully transparent pixels are repainted, as OpenAI documents; a mask without
    /// transparency is read as a grey mask, white repaints), `prompt`, `n`, `size` (default: the
    /// image's), `response_format`, and zimage's `strength` (default 1 with a mask, else 0.6).
    func edit(_ request: Request, context: ZImageRequestContext) async throws -> Response {
        guard let boundary = request.headers[.contentType].flatMap(MultipartForm.boundary(contentType:)) else {
            throw APIError.badRequest(nil, "images/edits takes a multipart/form-data body")
        }
        let body = try await RequestJSON.body(request, limit: 32 << 20)
        let form: MultipartForm
        do { form = try MultipartForm(body, boundary: boundary) } catch {
            throw APIError.badRequest(nil, "\(error)")
        }
        guard let imagePart = form.part("image") else { throw APIError.badRequest("image", "image is required") }
        let image = try EditInputs.png(imagePart.body, field: "image")
        var object: [String: Any] = [:]
        for key in ["prompt", "size", "response_format"] { object[key] = form.text(key) }
        if let n = form.text("n") {
            guard let value = Int(n.trimmingCharacters(in: .whitespaces)) else {
                throw APIError.badRequest("n", "n must be an integer")
            }
            object["n"] = value
        }
        if let seed = form.text("seed").flatMap({ Int($0) }) { object["seed"] = seed }
        if object["size"] == nil || object["size"] as? String == "auto", let size = EditInputs.size(of: image) {
            object["size"] = "\(size.width)x\(size.height)"
        }
        var p = try parameters(from: RequestJSON(object: object))
        p.initImage = image
        if let maskPart = form.part("mask") {
            p.mask = try Self.greyMask(EditInputs.png(maskPart.body, field: "mask"))
        }
        if let text = form.text("strength") {
            guard let strength = Double(text), strength.isFinite, strength > 0, strength <= 1,
                  ZImagePipeline.firstStep(steps: p.steps, strength: strength) < p.steps else {
                throw APIError(.unprocessableContent, code: "invalid_parameter", field: "strength",
                               message: "strength must be above 0 and at most 1, leaving at least one step")
            }
            p.strength = strength
        }
        // The Idempotency-Key digest covers the form's text fields and both images.
        var covered = object
        covered["image"] = imagePart.body.base64EncodedString()
        if let maskPart = form.part("mask") { covered["mask"] = maskPart.body.base64EncodedString() }
        if let text = form.text("strength") { covered["strength"] = text }
        return try await respond(p, format: (object["response_format"] as? String) ?? "b64_json", request: request,
                                 body: covered)
    }

    /// OpenAI's alpha mask as a grey one (transparent → white, repaint); an opaque PNG as it is.
    static func greyMask(_ png: Data) throws -> Data {
        let bytes = [UInt8](png)
        guard let alpha = try? PNGDecoder.alpha(bytes), alpha.alpha.contains(where: { $0 < 255 }) else { return png }
        var pixels = [UInt8](repeating: 0, count: alpha.width * alpha.height * 3)
        for (index, value) in alpha.alpha.enumerated() where value == 0 {
            (pixels[index * 3], pixels[index * 3 + 1], pixels[index * 3 + 2]) = (255, 255, 255)
        }
        let grey = RGBImage(width: alpha.width, height: alpha.height, pixels: pixels)
        return Data(try PNGEncoder.encode(grey, text: []))
    }

    /// Queues the job, waits for it, answers as OpenAI does. `body` is what the Idempotency-Key's
    /// digest covers (a retry with the same key and another body is refused).
    func respond(_ p: GenerationParameters, format: String, request: Request,
                 body: [String: Any]) async throws -> Response {
        guard format == "b64_json" || format == "url" else {
            throw APIError.badRequest("response_format", "response_format must be \"b64_json\" or \"url\"")
        }
        let key = try IdempotencyKey.parse(request.headers[.idempotencyKey])
        // A retry with the same Idempotency-Key waits for (or returns) the first request's job.
        let digest = key.map { _ in IdempotencyKey.digest(body, source: "openai") }
        let job = try await service.submit(p, source: "openai", idempotencyKey: key, requestDigest: digest).job
        let finished = try await service.ended(job.id)
        switch finished.status {
        case .done: break
        case .cancelled: throw APIError(.conflict, code: "cancelled", message: "the generation was cancelled")
        default: throw APIError(.internalServerError, code: "generation_failed", message: "the generation failed")
        }
        var data: [[String: Any]] = []
        for image in try await store.images(of: job.id) {
            if format == "url" {
                data.append(["url": "\(publicURL)/api/v1/images/\(image.id)", "revised_prompt": p.prompt])
                continue
            }
            guard let bytes = try await store.imageData(image.id) else {
                throw APIError(.internalServerError, code: "image_missing", message: "image \(image.id) is missing")
            }
            data.append(["b64_json": bytes.base64EncodedString(), "revised_prompt": p.prompt])
        }
        return Response.json(["created": Int(finished.createdAt), "data": data])
    }
}
