import Foundation

/// Where jobs, their images and the queue live: SQLite in one process (`SQLiteJobStore`, the
/// embedded default) or PostgreSQL shared by many nodes (`PostgresJobStore`). Workers pull jobs:
/// `claim` hands the oldest queued job to exactly one worker with a lease, which the worker renews
/// while it runs; a job whose lease runs out goes back to the queue once (`requeueExpired`), and
/// every write a worker makes afterwards (`complete`, `finish`, `release`) checks that it still
/// holds the lease, so a job is never recorded twice.
protocol JobStore: Sendable {
    /// The name in logs and `/api/v1/system` (`sqlite` or `postgresql`).
    var kind: String { get }
    /// Whether other processes share this store (then jobs running elsewhere are not this node's to recover).
    var isShared: Bool { get }

    // MARK: Clients

    /// Queues a job, unless `maxQueued` jobs wait already; with an idempotency key, a job already
    /// submitted with it is returned instead (compared by `requestDigest`).
    func submit(_ job: NewJob, maxQueued: Int) async throws -> SubmitOutcome
    func job(_ id: String) async throws -> JobRecord?
    /// Queued jobs in queue order.
    func queued() async throws -> [JobRecord]
    /// Running jobs, the longest-running first.
    func running() async throws -> [JobRecord]
    /// 1-based place among queued jobs, 0 while running, nil otherwise.
    func position(of id: String) async throws -> Int?
    func count(status: JobRecord.Status) async throws -> Int
    /// Finished jobs, newest first: `limit` of them after the first `offset`.
    func history(offset: Int, limit: Int) async throws -> (total: Int, jobs: [JobRecord])
    func images(of jobId: String) async throws -> [ImageRecord]
    func image(_ id: String) async throws -> ImageRecord?
    /// The PNG of image `id`.
    func imageData(_ id: String) async throws -> Data?
    /// Deletes a finished job and its images; false when there is no such job.
    func delete(_ id: String) async throws -> Bool
    /// Cancels a queued job at once; false when it is not queued (any more).
    func cancelQueued(_ id: String) async throws -> Bool
    /// Asks the worker of a running job to stop; false when it is not running.
    func requestCancel(_ id: String) async throws -> Bool

    // MARK: Workers

    /// The oldest queued job, now running under `worker`'s lease for `leaseSeconds`; nil when none waits.
    func claim(worker: String, leaseSeconds: Double) async throws -> JobRecord?
    /// Extends `worker`'s lease on a running job.
    func renew(_ id: String, worker: String, leaseSeconds: Double) async throws -> LeaseState
    /// Records the images and marks the job done, if `worker` still holds it; false (and nothing
    /// stored) when it does not.
    func complete(_ id: String, worker: String, images: [StoredImage], promptTruncated: Bool) async throws -> Bool
    /// Ends a job `worker` holds as failed or cancelled.
    func finish(_ id: String, worker: String, status: JobRecord.Status, error: String?) async throws -> Bool
    /// Puts a job `worker` holds back in the queue (a graceful stop, or a device failure to retry
    /// on another worker); `countAttempt` false gives the claim back as if it never happened.
    func release(_ id: String, worker: String, countAttempt: Bool, error: String?) async throws -> Bool
    /// Jobs whose lease ran out go back to the queue, or fail once they were claimed `maxAttempts`
    /// times; each is changed by exactly one caller. Returns the ids changed.
    func requeueExpired(maxAttempts: Int) async throws -> [String]
    /// Brings the schema up to date; safe when several nodes start at once. Runs before the workers start.
    func prepare() async throws
    /// At the start of a node that owns the store alone: jobs left running by the last process go
    /// back to the queue. A shared store does nothing (other nodes may be running them).
    func recoverAfterRestart() async throws

    // MARK: Events between nodes

    /// Sends a job event to the other nodes (a no-op for a store no other process shares).
    func broadcast(_ message: ClusterMessage)
    /// Calls `handler` with every message other nodes broadcast, until the task is cancelled.
    func listen(_ handler: @escaping @Sendable (ClusterMessage) async -> Void) async throws
}

/// A message between nodes sharing a store: a job event, a cancel for whoever runs the job, or
/// "a job was queued" (wakes idle workers).
struct ClusterMessage: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable { case event, cancel, queued }
    var kind: Kind
    /// The node that sent it (a node ignores its own messages).
    var node: String
    var job: String
    /// For `.event`: the `JobEvent.Kind` raw value and its payload.
    var event: String?
    var position: Int?
    var step: Int?, steps: Int?, image: Int?, images: Int?
    /// A base64 PNG preview, only when small (a PostgreSQL notification carries at most 8000 bytes).
    var preview: String?
    var error: String?
}
