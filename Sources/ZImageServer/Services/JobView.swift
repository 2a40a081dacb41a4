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
        ]
        object["parameters"] = (try? job.decodedParameters()).map(parametersObject) ?? [:]
        return object
    }

    static func json(_ object: Any) -> String { SafeJSON.string(object) }

    /// The job as JSON text, with its live position and progress.
    static func make(_ id: String, store: JobStore, service: GenerationService) async throws -> String {
        json(try await objectFor(id, store: store, service: service))
    }

    static func objectFor(_ id: String, store: JobStore, service: GenerationService) async throws -> [String: Any] {
        guard let job = try store.job(id) else { throw APIError.notFound("generation \(APIError.shown(id))") }
        let position = await service.position(of: id)
        let progress = service.events.latestProgress(id)?.counts
        return object(job, images: try store.images(of: id), position: position, progress: progress)
    }
}
