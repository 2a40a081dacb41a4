import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import ZImagePipeline

/// The job queue and this node's workers: jobs live in a `JobStore` (SQLite, or PostgreSQL shared
/// by several nodes); one worker per device pulls the next queued job when it is free. A restart
/// loses nothing (queued jobs run, a running job runs again), a job whose node died is taken up
/// by another node once its lease runs out, and events reach listeners on every node.
public actor GenerationService: Service {
    let store: any JobStore
    let workers: [GenerationWorker]
    /// Every job's events, for SSE listeners and `/sdapi/v1/progress`.
    public let events: JobEvents
    let metrics: ServerMetrics
    let logger: Logger
    let maxQueue: Int
    let lease: LeasePolicy
    /// This node's name (workers are `node/N`).
    public nonisolated let node: String
    private let cancelFlags = NIOLockedValueBox<Set<String>>([])
    private let stopping = NIOLockedValueBox(false)
    private let ready = NIOLockedValueBox(false)
    /// Whether the store is prepared (schema migrated, jobs of the last run recovered).
    nonisolated var isReady: Bool { ready.withLockedValue { $0 } }
    private var wakeUps: [AsyncStream<Void>.Continuation] = []

    init(store: any JobStore, workers specs: [WorkerSpec], node: String, events: JobEvents, metrics: ServerMetrics,
         maxQueue: Int, lease: LeasePolicy, logger: Logger) {
        self.store = store
        self.events = events
        self.metrics = metrics
        self.maxQueue = maxQueue
        self.lease = lease
        self.logger = logger
        self.node = node
        workers = specs.enumerated().map { GenerationWorker(id: "\(node)/\($0.offset)", spec: $0.element) }
    }

    // MARK: Queue operations (called by the HTTP handlers)

    /// A submit's result: the job, and whether it is one an earlier request with the same
    /// idempotency key made (then nothing new was queued).
    struct Submission: Sendable {
        var job: JobRecord
        var replayed: Bool
    }

    /// Enqueues parameters the API has validated (`ParameterCheck`), with their seed resolved
    /// so it can be reported at once.
    func submit(_ parameters: GenerationParameters, source: String) async throws -> JobRecord {
        try await submit(parameters, source: source, idempotencyKey: nil, requestDigest: nil).job
    }

    /// Enqueues, or with an `Idempotency-Key` already used for the same request returns that
    /// request's job (422 when the key came with a different request, told by `requestDigest`).
    func submit(_ parameters: GenerationParameters, source: String, idempotencyKey: String?,
                requestDigest digest: String?) async throws -> Submission {
        var parameters = parameters
        let seed = try parameters.seed ?? Seed.resolve(nil)
        parameters.seed = seed
        let encoded = String(decoding: try JSONEncoder().encode(parameters), as: UTF8.self)
        let new = NewJob(id: UUID().uuidString.lowercased(), parameters: encoded, seed: Int64(clamping: seed),
                         source: source, createdAt: Date().timeIntervalSince1970, idempotencyKey: idempotencyKey,
                         requestDigest: digest)
        switch try await store.submit(new, maxQueued: maxQueue) {
        case .queued(let job):
            let position = try await store.position(of: job.id) ?? 1
            events.publish(job.id, JobEvent(kind: .queued, payload: .position(position)))
            store.broadcast(ClusterMessage(kind: .queued, node: node, job: job.id))
            wakeWorkers()
            return Submission(job: job, replayed: false)
        case .replayed(let job):
            return Submission(job: job, replayed: true)
        case .keyReused:
            throw APIError(.unprocessableContent, code: "idempotency_key_reused", field: "Idempotency-Key",
                           message: "this Idempotency-Key was already used for a different request; use a new key")
        case .queueFull:
            metrics.rejected.increment()
            throw APIError(.tooManyRequests, code: "queue_full",
                           message: "the queue is full (\(maxQueue) jobs waiting); try again when some have finished")
        }
    }

    /// 1-based position among waiting jobs, 0 while running, nil otherwise.
    /// Waits until job `id` has ended (done, failed or cancelled) and returns its record: what the
    /// APIs that answer only with the images (A1111, OpenAI) wait for.
    nonisolated func ended(_ id: String) async throws -> JobRecord {
        let stream = events.subscribe(id)
        if let current = try await store.job(id), current.isActive {
            for await event in stream where event.isTerminal { break }
        }
        guard let finished = try await store.job(id) else { throw APIError.notFound("generation \(id)") }
        return finished
    }

    func position(of id: String) async throws -> Int? { try await store.position(of: id) }

    func queuedJobs() async throws -> [JobRecord] { try await store.queued() }
    func runningJobs() async throws -> [JobRecord] { try await store.running() }
    /// The longest-running job (what A1111's progress reports).
    func runningID() async throws -> String? { try await store.running().first?.id }
    /// Waiting and running jobs, on every node.
    func queueLength() async throws -> Int {
        try await store.count(status: .queued) + store.count(status: .running)
    }

    /// Cancels a queued job at once, or asks the running one to stop at its next step (on
    /// whichever node runs it).
    func cancel(_ id: String) async throws -> JobRecord {
        guard let job = try await store.job(id) else { throw APIError.notFound("generation \(APIError.shown(id))") }
        if job.status == .queued, try await store.cancelQueued(id) {
            let event = JobEvent(kind: .cancelled)
            events.publish(id, event)
            store.broadcast(ClusterMessage(event: event, job: id, node: node))
            return try await store.job(id) ?? job
        }
        if try await store.requestCancel(id) {
            cancelFlags.withLockedValue { _ = $0.insert(id) }
            store.broadcast(ClusterMessage(kind: .cancel, node: node, job: id))
            return try await store.job(id) ?? job
        }
        let now = try await store.job(id) ?? job
        throw APIError(.conflict, code: "not_cancellable", message: "generation \(id) is already \(now.status.rawValue)")
    }

    /// Cancels whatever runs now (A1111 `/interrupt` and `/skip`): every running job, as the
    /// one-GPU server stopped its one job.
    func interruptRunning() async {
        for job in (try? await store.running()) ?? [] { _ = try? await cancel(job.id) }
    }

    /// Each worker's state (`/api/v1/system`, `/metrics`).
    nonisolated var workerStatuses: [WorkerStatus] { workers.map(\.snapshot) }

    // MARK: Running

    /// Runs the service (ServiceLifecycle): prepares the store, recovers jobs after a restart
    /// (one node), then runs the workers and the lease reaper until shutdown.
    public func run() async throws {
        try await store.prepare()
        if !store.isShared { try await store.recoverAfterRestart() }
        ready.withLockedValue { $0 = true }
        let context = WorkerContext(store: store, node: node, events: events, metrics: metrics, lease: lease,
                                    cancelFlags: cancelFlags, stopping: stopping, logger: logger,
                                    jobJSON: { id in (try? await JobView.make(id, service: self)) ?? "{}" })
        var streams: [AsyncStream<Void>] = []
        for _ in workers {
            let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            continuation.yield()
            wakeUps.append(continuation)
            streams.append(stream)
        }
        let workers = self.workers, store = self.store, lease = self.lease, logger = self.logger
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { background in
                // Look for work now and then anyway: jobs queued by other nodes whose notification
                // was missed, and expired leases put back in the queue.
                background.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(Int(min(lease.leaseSeconds / 4, 2) * 1000)))
                        if Task.isCancelled { break }
                        do {
                            let changed = try await store.requeueExpired(maxAttempts: lease.maxAttempts)
                            if !changed.isEmpty {
                                logger.warning("leases expired; jobs back in the queue", metadata: ["jobs": "\(changed)"])
                            }
                        } catch {
                            logger.warning("could not look for expired leases", metadata: ["error": "\(error)"])
                        }
                        await self.wakeWorkers()
                        if store.isShared { await self.catchUpListeners() }
                    }
                }
                if store.isShared {
                    background.addTask {
                        while !Task.isCancelled {
                            do {
                                try await store.listen { message in await self.received(message) }
                            } catch {
                                if Task.isCancelled { break }
                                logger.warning("lost the store's notifications; reconnecting", metadata: ["error": "\(error)"])
                            }
                            try? await Task.sleep(for: .seconds(1))
                        }
                    }
                }
                // The workers end after a graceful stop has put their jobs back; then the rest stops.
                await withTaskGroup(of: Void.self) { group in
                    for (worker, stream) in zip(workers, streams) {
                        group.addTask { await worker.run(context, wake: stream) }
                    }
                }
                background.cancelAll()
            }
        } onGracefulShutdown: {
            Task { await self.beginShutdown() }
        }
    }

    private func wakeWorkers() { for wakeUp in wakeUps { wakeUp.yield() } }

    private func beginShutdown() {
        // Running jobs stop at their next step and go back to the queue for the next start.
        stopping.withLockedValue { $0 = true }
        for wakeUp in wakeUps { wakeUp.finish() }
    }

    /// Listeners of jobs that ended on another node whose notification this node missed (its
    /// LISTEN connection was down) get the end from the store.
    private func catchUpListeners() async {
        for id in events.listenedJobIDs {
            guard let job = try? await store.job(id), !job.isActive else { continue }
            switch job.status {
            case .done: events.publish(id, JobEvent(kind: .done, payload: .job((try? await JobView.make(id, service: self)) ?? "{}")))
            case .failed: events.publish(id, JobEvent(kind: .failed, payload: .error(job.error ?? "failed")))
            default: events.publish(id, JobEvent(kind: .cancelled))
            }
        }
    }

    /// A message from another node sharing the store.
    private func received(_ message: ClusterMessage) async {
        guard message.node != node else { return }
        switch message.kind {
        case .queued: wakeWorkers()
        case .cancel: cancelFlags.withLockedValue { _ = $0.insert(message.job) }
        case .event:
            guard var event = message.jobEvent else { return }
            if event.kind == .done { event.payload = .job((try? await JobView.make(message.job, service: self)) ?? "{}") }
            events.publish(message.job, event)
        }
    }
}
