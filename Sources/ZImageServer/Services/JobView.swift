import Foundation
import ZImagePipeline

/// The JSON shapes of the native API.
enum JobView {
    static func parametersObject(_ p: GenerationParameters) -> [String: Any] {
        ["prompt": p.prompt, "negative_prompt": p.negativePrompt, "width": p.width, "height": p.height,
         "steps": p.steps, "guidance_scale": Double(p.guidanceScale), "seed": p.seed.map { Int64(clamping: $0) } ?? Seed.randomMarker,
         "batch_size": p.batchSize, "cfg_normalization": Double(p.cfgNormalization),
         "cfg_truncation": Double(p.cfgTruncation), "tiled_decode": p.tiledDecode,
         // Strengths are Float: written as their shortest decimal (0.7, not 0.699999988).
         "loras": (p.loras ?? []).map { ["name": $0.name, "strength": Double("\($0.strength)") ?? 0] as [String: Any] },
         "strength": p.strength.map { $0 as Any } ?? NSNull(), "has_init_image": p.initImage != nil,
         "has_mask": p.mask != nil]
    }

    static func imageObject(_ image: ImageRecord) -> [String: Any] {
        ["id": image.id, "url": "/api/v1/images/\(image.id)", "seed": image.seed, "width": image.width,
         "height": image.height]
    }

    /// The job object: id, status, position, parameters, seed, times, error, progress, images.
    static func object(_ job: JobRecord, images: [ImageRecord], position: Int?, progress: [String: Any]?) -> [String: Any] {
        var object: [String: Any] = [
            "id": job.id, "status": job.status.rawValue, "position": position ?? NSNull(), "seed": job.seed,
            "created_at": job.createdAt, "started_at": job.startedAt ?? NSNull(),
            "finished_at": job.finishedAt ?? NSNull(), "error": job.error ?? NSNull(),
            "progress": progress ?? NSNull(), "images": images.map(imageObject),
            "prompt_truncated": job.promptTruncated.map { $0 as Any } ?? NSNull(),
            "worker": job.worker ?? NSNull(), "attempts": job.attempts,
        ]
        object["parameters"] = (try? job.decodedParameters()).map(parametersObject) ?? [:]
        return object
    }

    static func json(_ object: Any) -> String { SafeJSON.string(object) }

    /// The job as JSON text, with its live position and progress.
    static func make(_ id: String, service: GenerationService) async throws -> String {
        json(try await objectFor(id, service: service))
    }

    static func objectFor(_ id: String, service: GenerationService) async throws -> [String: Any] {
        let store = service.store
        guard let job = try await store.job(id) else { throw APIError.notFound("generation \(APIError.shown(id))") }
        return try await object(job, service: service)
    }

    /// The job object of a job already read, with its position, progress and images.
    static func object(_ job: JobRecord, service: GenerationService) async throws -> [String: Any] {
        let position = job.isActive ? try await service.store.position(of: job.id) : nil
        let progress = job.status == .running ? service.events.latestProgress(job.id)?.counts : nil
        return object(job, images: try await service.store.images(of: job.id), position: position, progress: progress)
    }
}
