import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import ZImageHub
import ZImagePipeline

/// AUTOMATIC1111-compatible `/sdapi/v1/*`, for clients such as `webuiapi`.
///
/// Policy for SD-era values (docs/server.md):
/// - A1111 computes uncond + s·(cond − uncond) = cond + (s − 1)·(cond − uncond), so `cfg_scale` s
///   is our guidance s − 1: 1 turns guidance off, values below 1 count as 1.
/// - A request whose steps and cfg_scale are exactly A1111's defaults (20 and 7, what clients send
///   when the user set nothing) gets Z-Image-Turbo's own defaults instead (8 steps, guidance off);
///   the option `zimage_sd_defaults` = "as_sent" turns this off. Other values are used as sent.
/// - Any sampler or scheduler name is accepted; Z-Image samples with FlowMatch Euler, and the
///   response says so. Unknown fields are ignored. Missing width/height mean 1024.
struct A1111API: Sendable {
    let service: GenerationService
    let store: any JobStore
    let engine: any GenerationEngine
    let limits: GenerationLimits
    let options: OptionsStore
    /// The Hugging Face cache listed by `sd-models` (nil: not listed).
    var hubCache: String? = nil

    static func defaultOptions(model: String) -> [String: Any] {
        ["sd_model_checkpoint": model, "sd_checkpoint_hash": NSNull(), "samples_format": "png",
         "CLIP_stop_at_last_layers": 1, "zimage_sd_defaults": "turbo"]
    }

    /// Options a client may set (each read back by GET /options); others are accepted and dropped.
    static let storedOptions: Set<String> = ["zimage_sd_defaults", "samples_format", "CLIP_stop_at_last_layers"]

    func register(on router: Router<ZImageRequestContext>) {
        let api = router.group("sdapi/v1")
        api.post("txt2img") { request, context in try await self.txt2img(request, context: context) }
        api.post("img2img") { request, context in try await self.img2img(request, context: context) }
        api.get("loras") { _, _ in Response.json(EditInputs.a1111List(self.engine.availableLoRAs())) }
        api.post("refresh-loras") { _, _ in Response.json(NSNull()) }
        api.get("progress") { _, _ in try await self.progress() }
        api.post("interrupt") { _, _ in
            await self.service.interruptRunning()
            return Response.json(NSNull())
        }
        api.post("skip") { _, _ in
            await self.service.interruptRunning()
            return Response.json(NSNull())
        }
        api.get("options") { _, _ in Response.json(self.options.snapshot()) }
        api.post("options") { request, context in
            let json = try await RequestJSON.read(request, context: context)
            if let value = json.object["zimage_sd_defaults"], !(["turbo", "as_sent"].contains(value as? String ?? "")) {
                throw APIError.badRequest("zimage_sd_defaults", "zimage_sd_defaults must be \"turbo\" or \"as_sent\"")
            }
            for key in Self.storedOptions.sorted() {
                guard let value = json.object[key] else { continue }
                let small = (value as? String).map { $0.utf8.count <= 100 } ?? (value is NSNumber)
                guard small else { throw APIError.badRequest(key, "\(key) must be a number or a string of at most 100 bytes") }
            }
            // Only keys this server knows are stored (unknown ones are ignored, so no client can
            // fill memory); the model cannot be switched (one model per server).
            self.options.update { options in
                for (key, value) in json.object where Self.storedOptions.contains(key) { options[key] = value }
            }
            return Response.json(NSNull())
        }
        api.get("sd-models") { _, _ in Response.json(self.sdModels()) }
        api.get("samplers") { _, _ in
            Response.json([["name": "Euler", "aliases": ["euler", "flowmatch_euler", "k_euler"], "options": [:]]])
        }
        api.get("schedulers") { _, _ in
            Response.json([["name": "simple", "label": "Simple", "aliases": NSNull(), "default_rho": -1,
                            "need_inner_model": false]])
        }
    }

    /// `GET /sdapi/v1/sd-models`: the served model first, then each diffusers pipeline in the
    /// Hugging Face cache (`HubCache.cachedModels`; what `zimage pull` and `huggingface-cli` put
    /// there), in A1111's shape: title `ORG/NAME [commit10]` (`@revision` when not `main`), hash
    /// the commit's first 10 characters (A1111's short-hash length), filename the snapshot folder.
    /// The server runs one model; the others are listed for `--model ORG/NAME` at the next start.
    func sdModels() -> [[String: Any]] {
        var models: [[String: Any]] = [["title": engine.modelName, "model_name": engine.modelName, "hash": NSNull(),
                                        "sha256": NSNull(), "filename": engine.modelName, "config": NSNull()]]
        guard let hubCache else { return models }
        for cached in HubCache.cachedModels(in: hubCache) {
            let name = cached.repo + (cached.revision == "main" ? "" : "@" + cached.revision)
            let hash = String(cached.commit.prefix(10))
            models.append(["title": "\(name) [\(hash)]", "model_name": name, "hash": hash, "sha256": NSNull(),
                           "filename": cached.snapshot, "config": NSNull()])
        }
        return models
    }

    /// Generation parameters from a `txt2img` body, in A1111's terms: images = `batch_size` ×
    /// `n_iter` (each bounded first, so the product cannot overflow), guidance = `cfg_scale` − 1.
    func parameters(from json: RequestJSON) throws -> (GenerationParameters, sent: [String: Any]) {
        let prompt = try json.string("prompt") ?? ""
        var p = GenerationParameters(prompt: prompt)
        p.negativePrompt = try json.string("negative_prompt") ?? ""
        p.width = try json.int("width") ?? 1024
        p.height = try json.int("height") ?? 1024
        let steps = try json.int("steps"), cfg = try json.double("cfg_scale")
        let keepSDDefaults = options.snapshot()["zimage_sd_defaults"] as? String == "as_sent"
        let maxCFG = Double(limits.guidance.upperBound) + 1
        if let cfg, cfg > maxCFG {
            throw APIError(.unprocessableContent, code: "invalid_parameter", field: "cfg_scale",
                           message: "cfg_scale \(cfg) is above this server's limit of \(Infotext.format(Float(maxCFG)))")
        }
        if steps == 20 && cfg == 7 && !keepSDDefaults {
            (p.steps, p.guidanceScale) = (8, 0)
        } else {
            p.steps = steps ?? 8
            p.guidanceScale = Float(max((cfg ?? 1) - 1, 0))
        }
        let batch = try json.int("batch_size") ?? 1, iterations = try json.int("n_iter") ?? 1
        let most = limits.batch.upperBound
        for (field, value) in [("batch_size", batch), ("n_iter", iterations)] {
            guard value >= 1 else { throw APIError.badRequest(field, "\(field) must be 1 or more") }
            guard value <= most else {
                throw APIError(.unprocessableContent, code: "invalid_parameter", field: field,
                               message: "\(field) \(value) is above this server's limit of \(most) images")
            }
        }
        guard batch * iterations <= most else {
            throw APIError(.unprocessableContent, code: "invalid_parameter", field: "batch_size",
                           message: "batch_size × n_iter = \(batch * iterations) is above this server's limit of \(most) images")
        }
        p.batchSize = batch * iterations
        p.seed = try ParameterCheck.seed(try json.int("seed"))
        p.loras = try EditInputs.loras(prompt: prompt, engine: engine)
        try ParameterCheck.validate(p, limits: limits, names: .a1111, engine: engine)
        return (p, json.object)
    }

    func txt2img(_ request: Request, context: ZImageRequestContext) async throws -> Response {
        let json = try await RequestJSON.read(request, context: context)
        let (parameters, sent) = try self.parameters(from: json)
        return try await respond(parameters, sent: sent)
    }

    /// `img2img`: `init_images` (the first is used; base64 PNG), `mask` (inpainting; white repaints),
    /// `denoising_strength` (A1111's default 0.75), `inpainting_mask_invert`. Width and height default
    /// to the init image's size. `mask_blur`, `inpainting_fill`, `inpaint_full_res` and
    /// `resize_mode` are accepted; diffusers' inpainting (the reference) has no counterpart for
    /// them, so they change nothing (docs/server.md).
    func img2img(_ request: Request, context: ZImageRequestContext) async throws -> Response {
        let json = try await RequestJSON.read(request, context: context, limit: 32 << 20)
        guard let images = json.object["init_images"] as? [Any], let first = images.first as? String else {
            throw APIError.badRequest("init_images", "init_images must be a list holding one base64 PNG image")
        }
        let initImage = try EditInputs.png(base64: first, field: "init_images")
        let mask = try json.string("mask").flatMap { $0.isEmpty ? nil : try EditInputs.png(base64: $0, field: "mask") }
        var object = json.object
        if let size = EditInputs.size(of: initImage) {
            if !json.has("width") { object["width"] = size.width }
            if !json.has("height") { object["height"] = size.height }
        }
        var (parameters, sent) = try self.parameters(from: RequestJSON(object: object))
        let strength = try json.double("denoising_strength") ?? 0.75
        guard strength.isFinite, strength > 0, strength <= 1 else {
            throw APIError(.unprocessableContent, code: "invalid_parameter", field: "denoising_strength",
                           message: "denoising_strength \(strength) must be above 0 and at most 1")
        }
        guard ZImagePipeline.firstStep(steps: parameters.steps, strength: strength) < parameters.steps else {
            throw APIError(.unprocessableContent, code: "invalid_parameter", field: "denoising_strength",
                           message: "denoising_strength \(strength) leaves none of the \(parameters.steps) steps to run")
        }
        (parameters.initImage, parameters.mask, parameters.strength) = (initImage, mask, strength)
        parameters.maskInvert = (try? json.int("inpainting_mask_invert")).flatMap { $0 } == 1 ? true : nil
        sent["init_images"] = nil
        sent["mask"] = nil
        return try await respond(parameters, sent: sent)
    }

    /// Queues the job, waits for it, and answers as A1111 does (images, parameters, info).
    func respond(_ parameters: GenerationParameters, sent: [String: Any]) async throws -> Response {
        let job = try await service.submit(parameters, source: "a1111")
        // A1111 answers when the images are done: wait for this job's end.
        let finished = try await service.ended(job.id)
        switch finished.status {
        case .done: break
        case .cancelled: throw APIError(.conflict, code: "interrupted", message: "the generation was interrupted")
        default: throw APIError(.internalServerError, code: "generation_failed", message: finished.error ?? "failed")
        }
        let images = try await store.images(of: job.id)
        let resolved = try finished.decodedParameters()
        let seeds = images.map(\.seed)
        var echo = sent
        for (key, value) in ["prompt": resolved.prompt, "negative_prompt": resolved.negativePrompt,
                             "width": resolved.width, "height": resolved.height, "steps": resolved.steps,
                             "cfg_scale": Double(resolved.guidanceScale) + 1, "seed": finished.seed,
                             "sampler_name": "Euler", "batch_size": resolved.batchSize, "n_iter": 1] as [String: Any] {
            echo[key] = value
        }
        let info: [String: Any] = [
            "prompt": resolved.prompt, "all_prompts": Array(repeating: resolved.prompt, count: images.count),
            "negative_prompt": resolved.negativePrompt,
            "all_negative_prompts": Array(repeating: resolved.negativePrompt, count: images.count),
            "seed": finished.seed, "all_seeds": seeds, "subseed": -1, "all_subseeds": seeds.map { _ in -1 },
            "subseed_strength": 0, "width": resolved.width, "height": resolved.height, "sampler_name": "Euler",
            "cfg_scale": Double(resolved.guidanceScale) + 1, "steps": resolved.steps, "batch_size": resolved.batchSize,
            "restore_faces": false, "sd_model_name": engine.modelName, "sd_model_hash": NSNull(),
            "seed_resize_from_w": -1, "seed_resize_from_h": -1, "denoising_strength": resolved.strength ?? 0,
            "extra_generation_params": [:],
            "index_of_first_image": 0, "infotexts": images.map(\.infotext), "styles": [], "clip_skip": 1,
            "job_timestamp": String(Int(finished.createdAt)), "is_using_inpainting_conditioning": false,
            "version": ServerInfo.version, "prompt_truncated": finished.promptTruncated ?? false,
        ]
        var encoded: [String] = []
        for image in images {
            guard let data = try await store.imageData(image.id) else {
                throw APIError(.internalServerError, code: "image_missing", message: "image \(image.id) is missing")
            }
            encoded.append(data.base64EncodedString())
        }
        return Response.json(["images": encoded, "parameters": echo, "info": JobView.json(info)])
    }

    func progress() async throws -> Response {
        guard let running = try await service.runningID() else {
            return Response.json(["progress": 0, "eta_relative": 0, "current_image": NSNull(), "textinfo": NSNull(),
                                  "state": state(job: "", step: 0, steps: 0, count: try await service.queueLength())])
        }
        var step = 0, steps = 0, image = 0, images = 1
        var preview: Any = NSNull()
        if let latest = service.events.latestProgress(running) {
            (step, steps, image, images) = (latest.step, latest.steps, latest.image, latest.images)
            if let png = latest.previewPNG { preview = Data(png).base64EncodedString() }
        }
        let done = Double(image * steps + step), total = Double(max(images * steps, 1))
        let fraction = done / total
        var eta: Double = 0
        if let job = try await store.job(running), let started = job.startedAt, fraction > 0 {
            let elapsed = Date().timeIntervalSince1970 - started
            eta = elapsed / fraction - elapsed
        }
        return Response.json(["progress": fraction, "eta_relative": eta, "current_image": preview, "textinfo": NSNull(),
                              "state": state(job: running, step: step, steps: steps, count: try await service.queueLength())])
    }

    func state(job: String, step: Int, steps: Int, count: Int) -> [String: Any] {
        ["skipped": false, "interrupted": false, "stopping_generation": false, "job": job, "job_count": count,
         "job_timestamp": "0", "job_no": 0, "sampling_step": step, "sampling_steps": steps]
    }
}

/// The A1111 options dictionary, shared by requests (guarded by a lock).
final class OptionsStore: @unchecked Sendable {
    // Only touched under `lock`.
    private var values: [String: Any]
    private let lock = NSLock()

    init(_ values: [String: Any]) { self.values = values }

    func snapshot() -> [String: Any] { lock.withLock { values } }
    func update(_ change: (inout [String: Any]) -> Void) { lock.withLock { change(&values) } }
}
