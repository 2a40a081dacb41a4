import Foundation
import Hummingbird
import NIOCore
import ZImagePipeline
import ZImagePlanner
import ZImageTensor

/// The native JSON API under `/api/v1` (documented in Resources/openapi.json).
struct NativeAPI: Sendable {
    let service: GenerationService
    let store: any JobStore
    let engine: any GenerationEngine
    let limits: GenerationLimits
    /// Live GPU readings (NVML), when the server has a monitor.
    var gpuStatistics: (@Sendable () -> [GPUStatistics])? = nil
    /// The planner's choice for this node, when one was made.
    var plan: PlanSummary? = nil

    func register(on router: Router<ZImageRequestContext>) {
        let api = router.group("api/v1")
        api.get("loras") { _, _ in
            Response.json(["items": self.engine.availableLoRAs().map { ["name": $0.name, "size": $0.byteCount] }])
        }
        api.post("generations") { request, context in
            // Room for a base64 init image and mask (EditInputs.maxImageBytes each, before base64).
            let json = try await RequestJSON.read(request, context: context, limit: 32 << 20)
            let key = try IdempotencyKey.parse(request.headers[.idempotencyKey])
            let parameters = try self.parameters(from: json)
            let digest = key.map { _ in IdempotencyKey.digest(json.object, source: "api") }
            let submission = try await self.service.submit(parameters, source: "api", idempotencyKey: key,
                                                           requestDigest: digest)
            let job = try await self.store.job(submission.job.id) ?? submission.job
            let position = try await self.service.position(of: job.id)
            var response = Response.json(["id": job.id, "status": job.status.rawValue, "position": position ?? NSNull(),
                                          "seed": job.seed], status: .accepted)
            if submission.replayed { response.headers[.idempotentReplayed] = "true" }
            return response
        }
        api.get("generations/:id") { _, context in
            Response.json(try await JobView.objectFor(try context.parameters.require("id"), service: self.service))
        }
        api.get("generations/:id/events") { _, context in
            try await self.events(try context.parameters.require("id"))
        }
        api.post("generations/:id/cancel") { _, context in
            let id = try context.parameters.require("id")
            _ = try await self.service.cancel(id)
            return Response.json(try await JobView.objectFor(id, service: self.service))
        }
        api.get("queue") { _, _ in
            var queued: [[String: Any]] = []
            for job in try await self.service.queuedJobs() { queued.append(try await JobView.object(job, service: self.service)) }
            var running: [[String: Any]] = []
            for job in try await self.service.runningJobs() { running.append(try await JobView.object(job, service: self.service)) }
            // `running` is the longest-running job (as with one worker); `running_jobs` lists all of them.
            return Response.json(["running": running.first.map { $0 as Any } ?? NSNull(), "running_jobs": running,
                                  "queued": queued])
        }
        api.get("history") { request, _ in
            let page = try Self.query(request, "page") ?? 1
            let perPage = try Self.query(request, "per_page") ?? 24
            guard page >= 1 else { throw APIError.badRequest("page", "page must be 1 or more") }
            guard (1...Self.maxPerPage).contains(perPage) else {
                throw APIError.badRequest("per_page", "per_page must be 1 to \(Self.maxPerPage)")
            }
            let (offset, overflow) = (page - 1).multipliedReportingOverflow(by: perPage)
            guard !overflow else { throw APIError.badRequest("page", "page \(page) is too large") }
            let (total, jobs) = try await self.store.history(offset: offset, limit: perPage)
            var items: [[String: Any]] = []
            for job in jobs {
                items.append(JobView.object(job, images: try await self.store.images(of: job.id), position: nil, progress: nil))
            }
            return Response.json(["page": page, "per_page": perPage, "total": total, "items": items])
        }
        api.delete("history/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let job = try await self.store.job(id) else { throw APIError.notFound("generation \(APIError.shown(id))") }
            guard job.status != .queued, job.status != .running else {
                throw APIError(.conflict, code: "job_active", message: "cancel generation \(id) before deleting it")
            }
            _ = try await self.store.delete(id)
            return Response(status: .noContent)
        }
        api.get("images/:id") { _, context in
            let id = try context.parameters.require("id")
            // Images are addressed by id only; the id must be one the database knows.
            guard try await self.store.image(id) != nil,
                  let data = try await self.store.imageData(id) else {
                throw APIError.notFound("image \(APIError.shown(id))")
            }
            return Response.png([UInt8](data))
        }
        api.get("system") { _, _ in
            // "memory" is the device's (null on the CPU); the process's own memory is "host_memory".
            let memory: Any = self.engine.memory().map { ["used": $0.used, "total": $0.total] } ?? NSNull()
            let workers = self.service.workerStatuses
            let gpus = self.gpuStatistics?() ?? []
            let host: [String: Any] = ["allocated_bytes": ProcessMemory.allocatedBytes,
                                       "peak_resident_bytes": ProcessMemory.peakResidentBytes,
                                       "physical_bytes": Int(clamping: ProcessInfo.processInfo.physicalMemory)]
            return Response.json(["version": ServerInfo.version, "model": self.engine.modelName,
                                  "device": self.engine.deviceDescription, "memory": memory,
                                  "device_memory": self.engine.deviceMemory()?.object ?? NSNull(),
                                  "host_memory": host,
                                  "gpus": gpus.isEmpty ? NSNull() : gpus.map(\.object) as Any,
                                  "plan": self.plan?.object ?? NSNull(),
                                  "queue_length": try await self.service.queueLength(), "demo_model": self.engine.isDemoModel,
                                  "node": self.service.node, "store": self.store.isShared ? "shared" : "local",
                                  "queued": try await self.store.count(status: .queued),
                                  "running": try await self.store.count(status: .running),
                                  "workers": workers.map(\.object)])
        }
    }

    /// The largest history page (with prompts of at most 40,000 bytes a page stays below ~16 MiB).
    static let maxPerPage = 100

    /// An integer query parameter; present but not an integer is a 400 naming it.
    static func query(_ request: Request, _ name: String) throws -> Int? {
        guard let text = request.uri.queryParameters[name[...]] else { return nil }
        guard let value = Int(String(text)) else { throw APIError.badRequest(name, "\(name) must be an integer") }
        return value
    }

    /// Generation parameters from a native request body, validated against the server's limits.
    func parameters(from json: RequestJSON) throws -> GenerationParameters {
        guard let prompt = try json.string("prompt") else { throw APIError.badRequest("prompt", "prompt is required") }
        var p = GenerationParameters(prompt: prompt)
        p.negativePrompt = try json.string("negative_prompt") ?? ""
        p.width = try json.int("width") ?? p.width
        p.height = try json.int("height") ?? p.height
        p.steps = try json.int("steps") ?? p.steps
        p.batchSize = try json.int("batch_size") ?? p.batchSize
        p.guidanceScale = Float(try json.double("guidance_scale") ?? Double(p.guidanceScale))
        p.cfgTruncation = Float(try json.double("cfg_truncation") ?? 1)
        if let normalization = try? json.bool("cfg_normalization") {
            p.cfgNormalization = normalization ? 1 : 0
        } else {
            p.cfgNormalization = Float(try json.double("cfg_normalization") ?? 0)
        }
        p.tiledDecode = try json.bool("tiled_decode") ?? false
        p.seed = try ParameterCheck.seed(try json.int("seed"))
        p.loras = try EditInputs.loras(prompt: prompt, explicit: try Self.loras(json), engine: engine)
        if let text = try json.string("init_image"), !text.isEmpty {
            p.initImage = try EditInputs.png(base64: text, field: "init_image")
            if let size = p.initImage.flatMap(EditInputs.size(of:)) {
                if !json.has("width") { p.width = size.width }
                if !json.has("height") { p.height = size.height }
            }
            if let mask = try json.string("mask"), !mask.isEmpty { p.mask = try EditInputs.png(base64: mask, field: "mask") }
            if let strength = try json.double("strength") {
                guard strength.isFinite, strength > 0, strength <= 1,
                      ZImagePipeline.firstStep(steps: p.steps, strength: strength) < p.steps else {
                    throw APIError(.unprocessableContent, code: "invalid_parameter", field: "strength",
                                   message: "strength must be above 0 and at most 1, leaving at least one step")
                }
                p.strength = strength
            }
        } else if json.has("mask") || json.has("strength") {
            throw APIError.badRequest(json.has("mask") ? "mask" : "strength", "mask and strength need an init_image")
        }
        try ParameterCheck.validate(p, limits: limits, names: .native, engine: engine)
        return p
    }

    /// `loras`: a list of `{"name": …, "strength": …}` objects (strength 1 when absent).
    static func loras(_ json: RequestJSON) throws -> [LoRAReference] {
        guard json.has("loras") else { return [] }
        guard let list = json.object["loras"] as? [Any], list.count <= 16 else {
            throw APIError.badRequest("loras", "loras must be a list of at most 16 {\"name\", \"strength\"} objects")
        }
        return try list.map { item in
            guard let object = item as? [String: Any], let name = object["name"] as? String, !name.isEmpty,
                  name.utf8.count <= 255 else {
                throw APIError.badRequest("loras", "each LoRA needs a \"name\" (a LoRA of GET /api/v1/loras)")
            }
            let strength = try RequestJSON(object: object).double("strength") ?? 1
            return LoRAReference(name: name, strength: Float(strength))
        }
    }

    /// Server-sent events of one job: its state now, then every event until it ends.
    func events(_ id: String) async throws -> Response {
        let stream = service.events.subscribe(id)
        guard let job = try await store.job(id) else { throw APIError.notFound("generation \(APIError.shown(id))") }
        var opening: [JobEvent] = []
        switch job.status {
        case .done: opening.append(JobEvent(kind: .done, payload: .job(try await JobView.make(id, service: service))))
        case .failed: opening.append(JobEvent(kind: .failed, payload: .error(job.error ?? "failed")))
        case .cancelled: opening.append(JobEvent(kind: .cancelled))
        case .queued, .running:
            if let position = try await service.position(of: id), position > 0 {
                opening.append(JobEvent(kind: .queued, payload: .position(position)))
            } else if let latest = service.events.latest(id) {
                opening.append(latest)
            }
        }
        let finishedAlready = opening.last?.isTerminal ?? false
        let events = opening
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: .init { writer in
                            for event in events { try await writer.write(Self.frame(event)) }
                            if !finishedAlready {
                                for await event in stream {
                                    try await writer.write(Self.frame(event))
                                    if event.isTerminal { break }
                                }
                            }
                            try await writer.finish(nil)
                        })
    }

    static func frame(_ event: JobEvent) -> ByteBuffer {
        ByteBuffer(string: "event: \(event.kind.rawValue)\ndata: \(event.data)\n\n")
    }
}

/// The one check every API runs on its parameters: `GenerationParameters.validate` with the
/// server's limits and the API's field names (422 naming the field), the engine's tokenizer
/// counting prompt tokens; and the seed resolved once (400 when it is not -1 or 0…2^63 − 1).
enum ParameterCheck {
    static func validate(_ p: GenerationParameters, limits: GenerationLimits, names: FieldNames,
                         engine: any GenerationEngine) throws {
        do {
            try p.validate(limits: limits, names: names, countTokens: engine.tokenCount)
        } catch {
            // Over-long prompts stay 400 (as before); values outside a range are 422.
            let prompts = [names[.prompt].field, names[.negativePrompt].field]
            throw APIError(prompts.contains(error.field) ? .badRequest : .unprocessableContent, code: "invalid_parameter",
                           field: error.field, message: error.message)
        }
    }

    static func seed(_ requested: Int?, field: String = "seed") throws -> UInt64 {
        do { return try Seed.resolve(requested.map(Int64.init), field: field) } catch {
            throw APIError.badRequest(error.field, error.message)
        }
    }
}

enum ServerInfo {
    static let version = ZImagePipeline.version
}
