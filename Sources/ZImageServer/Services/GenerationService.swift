import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import ZImagePipeline

/// The job queue and its worker: a fair FIFO with a bound, one worker per engine (device), jobs
/// and images persisted so a restart loses nothing (queued jobs run, a running job runs again).
public actor GenerationService: Service {
    let store: JobStore
    let engine: any GenerationEngine
    public let events: JobEvents
    let metrics: ServerMetrics
    let logger: Logger
    let maxQueue: Int
    private var pending: [String] = []
    private var running: String?
    private var wakeUp: AsyncStream<Void>.Continuation?
    /// Set from any thread to stop the running job at its next step.
    private let cancelRequested = NIOLockedValueBox<Set<String>>([])
    private var shuttingDown = false

    init(store: JobStore, engine: any GenerationEngine, events: JobEvents, metrics: ServerMetrics, maxQueue: Int,
         logger: Logger) throws {
        self.store = store
        self.engine = engine
        self.events = events
        self.metrics = metrics
        self.maxQueue = maxQueue
        self.logger = logger
        pending = try store.recoverQueue().map(\.id)
    }

    // MARK: Queue operations (called by the HTTP handlers)

    /// Enqueues parameters the API has validated (`ParameterCheck`), with their seed resolved
    /// so it can be reported at once.
    func submit(_ parameters: GenerationParameters, source: String) throws -> JobRecord {
        var parameters = parameters
        guard pending.count < maxQueue else {
            metrics.rejected.increment()
            throw APIError(.tooManyRequests, code: "queue_full",
                           message: "the queue is full (\(maxQueue) jobs waiting); try again when some have finished")
        }
        let seed = try parameters.seed ?? Seed.resolve(nil)
        parameters.seed = seed
        let encoded = String(decoding: try JSONEncoder().encode(parameters), as: UTF8.self)
        let job = JobRecord(id: UUID().uuidString.lowercased(), sequence: try store.nextSequence(), status: .queued,
                            parameters: encoded, seed: Int64(clamping: seed), source: source,
                            createdAt: Date().timeIntervalSince1970)
        try store.insert(job)
        pending.append(job.id)
        metrics.queueLength.record(Int64(pending.count))
        events.publish(job.id, JobEvent(kind: .queued, payload: .position(pending.count)))
        wakeUp?.yield()
        return job
    }

    /// 1-based position among waiting jobs, 0 while running, nil otherwise.
    func position(of id: String) -> Int? {
        if running == id { return 0 }
        return pending.firstIndex(of: id).map { $0 + 1 }
    }

    var queuedIDs: [String] { pending }
    var runningID: String? { running }
    var queueLength: Int { pending.count + (running == nil ? 0 : 1) }

    /// Cancels a queued job at once, or asks the running one to stop at its next step.
    func cancel(_ id: String) throws -> JobRecord {
        guard let job = try store.job(id) else { throw APIError.notFound("generation \(APIError.shown(id))") }
        if let index = pending.firstIndex(of: id) {
            pending.remove(at: index)
            let cancelled = try store.update(id) { $0.status = .cancelled; $0.finishedAt = Date().timeIntervalSince1970 }
            metrics.queueLength.record(Int64(pending.count))
            events.publish(id, JobEvent(kind: .cancelled))
            return cancelled ?? job
        }
        if running == id {
            cancelRequested.withLockedValue { _ = $0.insert(id) }
            return job
        }
        throw APIError(.conflict, code: "not_cancellable", message: "generation \(id) is already \(job.status.rawValue)")
    }

    /// Cancels whatever runs now (A1111 `/interrupt`).
    func interruptRunning() {
        if let running { cancelRequested.withLockedValue { _ = $0.insert(running) } }
    }

    // MARK: Worker

    public func run() async throws {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        wakeUp = continuation
        continuation.yield()
        await withGracefulShutdownHandler {
            for await _ in stream {
                while !shuttingDown, !pending.isEmpty {
                    let id = pending.removeFirst()
                    metrics.queueLength.record(Int64(pending.count))
                    await execute(id)
                }
                if shuttingDown { break }
            }
        } onGracefulShutdown: {
            Task { await self.beginShutdown() }
        }
    }

    private func beginShutdown() {
        shuttingDown = true
        // The running job stops at its next step and goes back to the queue for the next start.
        if let running { cancelRequested.withLockedValue { _ = $0.insert(running) } }
        wakeUp?.finish()
    }

    /// A store write that the job's state depends on, retried for up to a minute: when the
    /// machine is out of descriptors or the disk is busy for a moment, the job's row still ends
    /// in the right state instead of staying "running".
    @discardableResult
    private func persist(_ what: String, job id: String, _ write: () throws -> Void) async -> Bool {
        for attempt in 0..<120 {
            do {
                try write()
                return true
            } catch {
                // Only a machine short of descriptors, disk or database access is worth waiting for.
                guard ResourceExhaustion.matches(error) else {
                    logger.error("could not record \(what)", metadata: ["job": "\(id)", "error": "\(error)"])
                    return false
                }
                if attempt == 0 { logger.warning("could not record \(what); retrying", metadata: ["job": "\(id)", "error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        logger.error("gave up recording \(what)", metadata: ["job": "\(id)"])
        return false
    }

    private func execute(_ id: String) async {
        guard let job = try? store.job(id), job.status == .queued, let parameters = try? job.decodedParameters() else {
            return
        }
        running = id
        defer { running = nil }
        let started = Date()
        guard await persist("the start", job: id, {
            _ = try store.update(id) { $0.status = .running; $0.startedAt = started.timeIntervalSince1970 }
        }) else { return }
        events.publish(id, JobEvent(kind: .started))
        logger.info("generation started", metadata: ["job": "\(id)", "size": "\(parameters.width)x\(parameters.height)"])
        let cancelFlags = cancelRequested, events = self.events, metrics = self.metrics
        let lastStep = NIOLockedValueBox(started)
        let stepTimes = NIOLockedValueBox<[Double]>([])
        do {
            let images = try await engine.generate(parameters) { progress in
                if progress.stage == .denoising {
                    let now = Date()
                    let previous = lastStep.withLockedValue { value in
                        defer { value = now }
                        return value
                    }
                    stepTimes.withLockedValue { $0.append(now.timeIntervalSince(previous)) }
                    let preview = progress.preview.flatMap { try? PNGEncoder.encode($0, text: [], compressionLevel: 1) }
                    events.publish(id, JobEvent(kind: .progress, payload: .progress(JobProgress(
                        step: progress.step, steps: progress.steps, image: progress.image, images: parameters.batchSize,
                        previewPNG: preview))))
                }
                return !cancelFlags.withLockedValue { $0.contains(id) }
            }
            for duration in stepTimes.withLockedValue({ $0 }) { metrics.stepSeconds.recordSeconds(duration) }
            var records: [ImageRecord] = []
            for (index, image) in images.enumerated() {
                let record = ImageRecord(id: UUID().uuidString.lowercased(), jobId: id, index: index,
                                         seed: Int64(clamping: image.seed), width: image.image.width,
                                         height: image.image.height, infotext: image.infotext,
                                         createdAt: Date().timeIntervalSince1970)
                let written = await persist("image \(index)", job: id) {
                    try PNGEncoder.write(image.image, text: [("parameters", image.infotext)], to: store.imagePath(record.id))
                }
                guard written else { throw ServiceError.imageNotWritten }
                records.append(record)
            }
            let truncated = images.contains { $0.promptTruncated }
            let finished = await persist("the result", job: id) {
                try store.finish(id, images: records, promptTruncated: truncated, at: Date().timeIntervalSince1970)
            }
            guard finished else { throw ServiceError.resultNotRecorded }
            metrics.jobSeconds.recordSeconds(Date().timeIntervalSince(started))
            metrics.completed.increment()
            let job = (try? await JobView.make(id, store: store, service: self)) ?? "{}"
            events.publish(id, JobEvent(kind: .done, payload: .job(job)))
            logger.info("generation done", metadata: ["job": "\(id)", "seconds": "\(Date().timeIntervalSince(started))"])
        } catch GenerationError.cancelled {
            cancelRequested.withLockedValue { _ = $0.remove(id) }
            if shuttingDown {
                await persist("the re-queue", job: id) { _ = try store.update(id) { $0.status = .queued; $0.startedAt = nil } }
                logger.info("generation re-queued for the next start", metadata: ["job": "\(id)"])
            } else {
                await persist("the cancellation", job: id) {
                    _ = try store.update(id) { $0.status = .cancelled; $0.finishedAt = Date().timeIntervalSince1970 }
                }
                metrics.cancelled.increment()
                events.publish(id, JobEvent(kind: .cancelled))
            }
        } catch {
            // Out of memory and every other failure end this job only; the server goes on.
            let message = "\(error)"
            await persist("the failure", job: id) {
                _ = try store.update(id) { $0.status = .failed; $0.error = message; $0.finishedAt = Date().timeIntervalSince1970 }
            }
            metrics.failed.increment()
            events.publish(id, JobEvent(kind: .failed, payload: .error(message)))
            logger.error("generation failed", metadata: ["job": "\(id)", "error": "\(message)"])
        }
    }
}

/// Why the worker could not finish a job the engine finished.
enum ServiceError: Error, CustomStringConvertible {
    case imageNotWritten, resultNotRecorded
    var description: String {
        switch self {
        case .imageNotWritten: "the image could not be written to the data folder"
        case .resultNotRecorded: "the result could not be recorded in the database"
        }
    }
}
