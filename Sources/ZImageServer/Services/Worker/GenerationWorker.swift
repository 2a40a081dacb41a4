import Foundation
import Logging
import NIOConcurrencyHelpers
import ZImagePipeline

/// What every worker of a node shares: the store, the node's event fan-out, metrics, lease
/// policy, the cancel flags of running jobs and the stop flag.
struct WorkerContext: Sendable {
    let store: any JobStore
    let node: String
    let events: JobEvents
    let metrics: ServerMetrics
    let lease: LeasePolicy
    /// Jobs a client asked to stop (set from any thread; the progress callback reads it).
    let cancelFlags: NIOLockedValueBox<Set<String>>
    /// Set on a graceful stop: running jobs stop at their next step and go back to the queue.
    let stopping: NIOLockedValueBox<Bool>
    let logger: Logger
    /// The job object as JSON (the `done` event), built by the service.
    let jobJSON: @Sendable (String) async -> String

    /// Publishes to this node's listeners and to the other nodes.
    func publish(_ id: String, _ event: JobEvent) {
        events.publish(id, event)
        store.broadcast(ClusterMessage(event: event, job: id, node: node))
    }
}

/// One device's worker: claims the next queued job when free, runs it on its own engine with a
/// renewed lease, records the result only while it still holds the lease, and rebuilds its
/// engine after the engine failed. Later, a worker could own several devices (sequence parallel)
/// behind the same `GenerationEngine`.
final class GenerationWorker: Sendable {
    let id: String
    let spec: WorkerSpec
    private let engine: NIOLockedValueBox<(any GenerationEngine)?>
    let status: NIOLockedValueBox<WorkerStatus>

    init(id: String, spec: WorkerSpec) {
        self.id = id
        self.spec = spec
        engine = NIOLockedValueBox(spec.engine)
        status = NIOLockedValueBox(WorkerStatus(id: id, device: spec.device, engineDevice: spec.engine.deviceDescription))
    }

    var snapshot: WorkerStatus {
        var value = status.withLockedValue { $0 }
        let current = engine.withLockedValue { $0 }
        value.memory = current?.memory()
        value.deviceMemory = current?.deviceMemory()
        return value
    }

    /// Claims and runs jobs until `wake` ends; each element of `wake` means "look for work".
    func run(_ context: WorkerContext, wake: AsyncStream<Void>) async {
        for await _ in wake {
            while !context.stopping.withLockedValue({ $0 }) {
                guard let engine = await readyEngine(context) else { break }
                let job: JobRecord?
                do {
                    job = try await context.store.claim(worker: id, leaseSeconds: context.lease.leaseSeconds)
                } catch {
                    context.logger.warning("could not claim a job", metadata: ["worker": "\(id)", "error": "\(error)"])
                    break
                }
                guard let job else { break }
                await execute(job, engine: engine, context)
            }
            if context.stopping.withLockedValue({ $0 }) { break }
        }
    }

    /// The engine, rebuilt first when the last one failed; nil while it cannot be built.
    private func readyEngine(_ context: WorkerContext) async -> (any GenerationEngine)? {
        if let engine = engine.withLockedValue({ $0 }) { return engine }
        status.withLockedValue { $0.state = .rebuilding }
        do {
            let fresh = try await spec.rebuild()
            engine.withLockedValue { $0 = fresh }
            status.withLockedValue {
                $0.state = .idle
                $0.engineDevice = fresh.deviceDescription
            }
            context.logger.info("worker rebuilt its engine", metadata: ["worker": "\(id)"])
            return fresh
        } catch {
            status.withLockedValue {
                $0.state = .broken
                $0.lastError = "\(error)"
            }
            context.logger.error("worker could not rebuild its engine", metadata: ["worker": "\(id)", "error": "\(error)"])
            return nil
        }
    }

    private func execute(_ job: JobRecord, engine: any GenerationEngine, _ context: WorkerContext) async {
        let id = job.id, store = context.store, worker = self.id
        guard let parameters = try? job.decodedParameters() else {
            _ = await persist("the failure", job: id, context) {
                _ = try await store.finish(id, worker: worker, status: .failed, error: "the stored parameters could not be read")
            }
            return
        }
        status.withLockedValue {
            $0.state = .running
            $0.job = id
        }
        defer { status.withLockedValue { $0.state = .idle; $0.job = nil } }
        context.metrics.queueWaitSeconds.recordSeconds(max(0, (job.startedAt ?? job.createdAt) - job.createdAt))
        context.publish(id, JobEvent(kind: .started))
        context.logger.info("generation started", metadata: ["job": "\(id)", "worker": "\(worker)", "attempt": "\(job.attempts)",
                                                             "size": "\(parameters.width)x\(parameters.height)"])
        let started = Date()
        let lost = NIOLockedValueBox(false)
        let cancelFlags = context.cancelFlags, stopping = context.stopping
        let renewal = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int(context.lease.renewInterval * 1000)))
                if Task.isCancelled { break }
                switch try? await store.renew(id, worker: worker, leaseSeconds: context.lease.leaseSeconds) {
                case .lost?: lost.withLockedValue { $0 = true }
                case .held(cancelRequested: true)?: cancelFlags.withLockedValue { _ = $0.insert(id) }
                default: break
                }
            }
        }
        defer { renewal.cancel() }
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
                    context.publish(id, JobEvent(kind: .progress, payload: .progress(JobProgress(
                        step: progress.step, steps: progress.steps, image: progress.image, images: parameters.batchSize,
                        previewPNG: preview))))
                }
                return !cancelFlags.withLockedValue { $0.contains(id) } && !lost.withLockedValue { $0 }
                    && !stopping.withLockedValue { $0 }
            }
            let steps = stepTimes.withLockedValue { $0 }
            for duration in steps { context.metrics.stepSeconds.recordSeconds(duration) }
            var stored: [StoredImage] = []
            for (index, image) in images.enumerated() {
                let record = ImageRecord(id: UUID().uuidString.lowercased(), jobId: id, index: index,
                                         seed: Int64(clamping: image.seed), width: image.image.width,
                                         height: image.image.height, infotext: image.infotext,
                                         createdAt: Date().timeIntervalSince1970)
                let png = try PNGEncoder.encode(image.image, text: [("parameters", image.infotext)])
                stored.append(StoredImage(record: record, png: Data(png)))
            }
            let truncated = images.contains { $0.promptTruncated }
            var recorded = false
            let written = await persist("the result", job: id, context) {
                recorded = try await store.complete(id, worker: worker, images: stored, promptTruncated: truncated)
            }
            guard written else { throw ServiceError.resultNotRecorded }
            guard recorded else {
                context.logger.warning("lease lost before the result was recorded; another worker runs the job",
                                       metadata: ["job": "\(id)", "worker": "\(worker)"])
                return
            }
            let seconds = Date().timeIntervalSince(started)
            context.metrics.jobSeconds.recordSeconds(seconds)
            context.metrics.completed.increment()
            context.metrics.workerCompleted(worker).increment()
            status.withLockedValue {
                $0.completed += 1
                $0.lastJobSeconds = seconds
                $0.lastStepSeconds = steps.last
            }
            context.publish(id, JobEvent(kind: .done, payload: .job(await context.jobJSON(id))))
            context.logger.info("generation done", metadata: ["job": "\(id)", "worker": "\(worker)", "seconds": "\(seconds)"])
        } catch GenerationError.cancelled {
            cancelFlags.withLockedValue { _ = $0.remove(id) }
            if lost.withLockedValue({ $0 }) {
                context.logger.warning("lease lost; stopped the job", metadata: ["job": "\(id)", "worker": "\(worker)"])
            } else if stopping.withLockedValue({ $0 }) {
                await persist("the re-queue", job: id, context) {
                    _ = try await store.release(id, worker: worker, countAttempt: false, error: nil)
                }
                context.logger.info("generation re-queued for the next start", metadata: ["job": "\(id)"])
            } else {
                await persist("the cancellation", job: id, context) {
                    _ = try await store.finish(id, worker: worker, status: .cancelled, error: nil)
                }
                context.metrics.cancelled.increment()
                context.publish(id, JobEvent(kind: .cancelled))
            }
        } catch let error where stopping.withLockedValue({ $0 }) {
            // Stopping (the engine may throw a cancellation of its own): back to the queue.
            context.logger.info("generation stopped for the shutdown", metadata: ["job": "\(id)", "error": "\(error)"])
            await persist("the re-queue", job: id, context) {
                _ = try await store.release(id, worker: worker, countAttempt: false, error: nil)
            }
        } catch where !(error is ServiceError) && !engine.isDeviceFailure(error) {
            await finishFailed(job, message: "\(error)", context)
        } catch {
            await engineFailed(job, error: error, context)
        }
    }

    /// The engine threw (out of memory, a driver error, anything but a cancel): this worker's
    /// engine is dropped and rebuilt before its next job. The job goes back to the queue for one
    /// more try (on this worker once rebuilt, or another); failing again, it fails with the message.
    private func engineFailed(_ job: JobRecord, error: any Error, _ context: WorkerContext) async {
        let id = job.id, store = context.store, worker = self.id
        let message = "\(error)"
        engine.withLockedValue { $0 = nil }
        status.withLockedValue {
            $0.deviceFailures += 1
            $0.lastError = message
        }
        context.metrics.workerFailures(worker).increment()
        if job.attempts < context.lease.maxEngineAttempts, !(error is ServiceError) {
            await persist("the retry", job: id, context) {
                _ = try await store.release(id, worker: worker, countAttempt: true, error: message)
            }
            let position = (try? await store.position(of: id)) ?? nil
            context.publish(id, JobEvent(kind: .queued, payload: .position(position ?? 1)))
            context.logger.warning("engine failed; job re-queued and the worker rebuilds its engine",
                                   metadata: ["job": "\(id)", "worker": "\(worker)", "error": "\(message)"])
            return
        }
        await finishFailed(job, message: message, context)
    }

    /// Ends the job as failed with `message`.
    private func finishFailed(_ job: JobRecord, message: String, _ context: WorkerContext) async {
        let id = job.id, store = context.store, worker = self.id
        await persist("the failure", job: id, context) {
            _ = try await store.finish(id, worker: worker, status: .failed, error: message)
        }
        status.withLockedValue { $0.failed += 1 }
        context.metrics.failed.increment()
        context.publish(id, JobEvent(kind: .failed, payload: .error(message)))
        context.logger.error("generation failed", metadata: ["job": "\(id)", "worker": "\(worker)", "error": "\(message)"])
    }

    /// A store write that the job's state depends on, retried for up to a minute when the machine
    /// is short of descriptors, disk or database access, so a job never stays "running" because a
    /// write failed for a moment.
    @discardableResult
    private func persist(_ what: String, job id: String, _ context: WorkerContext,
                         _ write: () async throws -> Void) async -> Bool {
        for attempt in 0..<120 {
            do {
                try await write()
                return true
            } catch {
                guard ResourceExhaustion.matches(error) else {
                    context.logger.error("could not record \(what)", metadata: ["job": "\(id)", "error": "\(error)"])
                    return false
                }
                if attempt == 0 {
                    context.logger.warning("could not record \(what); retrying", metadata: ["job": "\(id)", "error": "\(error)"])
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        context.logger.error("gave up recording \(what)", metadata: ["job": "\(id)"])
        return false
    }
}

/// Why a worker could not finish a job the engine finished.
enum ServiceError: Error, CustomStringConvertible {
    case resultNotRecorded
    var description: String {
        switch self {
        case .resultNotRecorded: "the result could not be recorded in the database"
        }
    }
}

extension ClusterMessage {
    /// A job event as a message to other nodes (a preview only when it fits a notification).
    init(event: JobEvent, job: String, node: String) {
        self.init(kind: .event, node: node, job: job, event: event.kind.rawValue)
        switch event.payload {
        case .none, .job: break
        case .position(let position): self.position = position
        case .progress(let progress):
            (step, steps, image, images) = (progress.step, progress.steps, progress.image, progress.images)
            if let png = progress.previewPNG, png.count <= 4096 { preview = Data(png).base64EncodedString() }
        case .error(let message): error = String(message.prefix(2000))
        }
    }

    /// The event again, on the receiving node (a `done` event's job object is read from the store there).
    var jobEvent: JobEvent? {
        guard kind == .event, let name = event, let eventKind = JobEvent.Kind(rawValue: name) else { return nil }
        switch eventKind {
        case .queued: return JobEvent(kind: .queued, payload: .position(position ?? 1))
        case .progress:
            let png = preview.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
            return JobEvent(kind: .progress, payload: .progress(JobProgress(step: step ?? 0, steps: steps ?? 0,
                                                                            image: image ?? 0, images: images ?? 1,
                                                                            previewPNG: png)))
        case .failed: return JobEvent(kind: .failed, payload: .error(error ?? "failed"))
        case .started, .done, .cancelled: return JobEvent(kind: eventKind)
        }
    }
}
