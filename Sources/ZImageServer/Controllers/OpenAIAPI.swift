import Foundation
import Hummingbird
import ZImagePipeline

/// OpenAI-compatible `POST /v1/images/generations` and `GET /v1/models`.
/// `size` is "WxH" (multiples of 16) or "auto" (1024x1024); `n` images (seeds seed, seed+1, ...,
/// random first seed); `response_format` "b64_json" (default) or "url" (this server's image URL);
/// other fields (`model`, `quality`, `style`, `user`, `output_format`, ...) are accepted and ignored.
struct OpenAIAPI: Sendable {
    let service: GenerationService
    let store: JobStore
    let engine: any GenerationEngine
    let limits: ServerLimits

    func register(on router: Router<ZImageRequestContext>) {
        router.post("v1/images/generations") { request, context in try await self.generate(request, context: context) }
        router.get("v1/models") { _, _ in
            Response.json(["object": "list", "data": [["id": self.engine.modelName, "object": "model",
                                                       "created": 1_764_000_000, "owned_by": "zimage"]]])
        }
    }

    func generate(_ request: Request, context: ZImageRequestContext) async throws -> Response {
        let json = try await RequestJSON.read(request, context: context)
        guard let prompt = try json.string("prompt"), !prompt.isEmpty else {
            throw APIError.badRequest("prompt", "prompt is required")
        }
        var p = GenerationParameters(prompt: prompt)
        try limits.check(prompt: prompt, negative: "")
        let size = try json.string("size") ?? "auto"
        if size != "auto" {
            let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2 else { throw APIError.badRequest("size", "size must be \"WIDTHxHEIGHT\" or \"auto\"") }
            (p.width, p.height) = (parts[0], parts[1])
        }
        p.batchSize = try json.int("n") ?? 1
        guard (1...10).contains(p.batchSize) else { throw APIError.badRequest("n", "n must be 1 to 10") }
        let format = try json.string("response_format") ?? "b64_json"
        guard format == "b64_json" || format == "url" else {
            throw APIError.badRequest("response_format", "response_format must be \"b64_json\" or \"url\"")
        }
        if let seed = try json.int("seed"), seed >= 0 { p.seed = UInt64(seed) }
        try limits.check(p)
        let job = try await service.submit(p, source: "openai")
        let stream = service.events.subscribe(job.id)
        if let current = try store.job(job.id), current.status == .queued || current.status == .running {
            for await event in stream where event.isTerminal { break }
        }
        guard let finished = try store.job(job.id), finished.status == .done else {
            let failed = try store.job(job.id)
            throw APIError(.internalServerError, code: "generation_failed",
                           message: failed?.error ?? "the generation did not finish (\(failed?.status.rawValue ?? "?"))")
        }
        let host = request.head.authority ?? "127.0.0.1"
        let data = try store.images(of: job.id).map { image -> [String: Any] in
            if format == "url" { return ["url": "http://\(host)/api/v1/images/\(image.id)", "revised_prompt": prompt] }
            guard let bytes = FileManager.default.contents(atPath: store.imagePath(image.id)) else {
                throw APIError(.internalServerError, code: "image_missing", message: "image \(image.id) is missing")
            }
            return ["b64_json": bytes.base64EncodedString(), "revised_prompt": prompt]
        }
        return Response.json(["created": Int(finished.createdAt), "data": data])
    }
}
