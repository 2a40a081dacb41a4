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
        let format = try json.string("response_format") ?? "b64_json"
        guard format == "b64_json" || format == "url" else {
            throw APIError.badRequest("response_format", "response_format must be \"b64_json\" or \"url\"")
        }
        let key = try IdempotencyKey.parse(request.headers[.idempotencyKey])
        // A retry with the same Idempotency-Key waits for (or returns) the first request's job.
        let digest = key.map { _ in IdempotencyKey.digest(json.object, source: "openai") }
        let job = try await service.submit(p, source: "openai", idempotencyKey: key, requestDigest: digest).job
        let stream = service.events.subscribe(job.id)
        if let current = try await store.job(job.id), current.isActive {
            for await event in stream where event.isTerminal { break }
        }
        guard let finished = try await store.job(job.id) else { throw APIError.notFound("generation \(job.id)") }
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
