import Foundation
import GRDB
import ZImagePipeline

/// A generation job as a store keeps it (a row of `jobs` in SQLite or PostgreSQL).
struct JobRecord: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    static let databaseTableName = "jobs"
    enum Status: String, Codable, Sendable { case queued, running, done, failed, cancelled }

    var id: String
    /// Submission order (FIFO).
    var sequence: Int64
    var status: Status
    /// `GenerationParameters` as JSON, seed resolved.
    var parameters: String
    var seed: Int64
    var source: String
    var createdAt: Double
    var startedAt: Double?
    var finishedAt: Double?
    var error: String?
    /// Whether the prompt was cut at the model's token limit (nil for jobs not finished, or
    /// finished before this was recorded).
    var promptTruncated: Bool?
    /// The worker (`node/device`) holding the job's lease while it runs, and the one that ran it after.
    var worker: String?
    /// When the running job's lease ends unless its worker renews it (seconds since 1970, the store's clock).
    var leaseExpiresAt: Double?
    /// How many times a worker has claimed the job.
    var attempts: Int = 0
    /// A client asked to cancel the running job; its worker stops at the next step.
    var cancelRequested: Bool = false
    /// The client's `Idempotency-Key`, and a digest of the request it came with.
    var idempotencyKey: String?
    var requestDigest: String?

    func decodedParameters() throws -> GenerationParameters {
        try JSONDecoder().decode(GenerationParameters.self, from: Data(parameters.utf8))
    }

    var isActive: Bool { status == .queued || status == .running }
}

/// An image a job produced. SQLite keeps its PNG as a file in `images/<id>.png`, PostgreSQL in a row.
struct ImageRecord: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    static let databaseTableName = "images"
    var id: String
    var jobId: String
    var index: Int
    var seed: Int64
    var width: Int
    var height: Int
    var infotext: String
    var createdAt: Double
}

/// A finished image on its way into the store: the record and its PNG bytes.
struct StoredImage: Sendable {
    var record: ImageRecord
    var png: Data
}

/// A job to be queued; the store gives it its place in the queue (`sequence`).
struct NewJob: Sendable {
    var id: String
    var parameters: String
    var seed: Int64
    var source: String
    var createdAt: Double
    var idempotencyKey: String?
    var requestDigest: String?
}

/// What `JobStore.submit` did.
enum SubmitOutcome: Sendable, Equatable {
    /// The job was queued.
    case queued(JobRecord)
    /// A job with the same idempotency key and request exists: that job, untouched.
    case replayed(JobRecord)
    /// The same idempotency key came with a different request.
    case keyReused(JobRecord)
    /// `maxQueued` jobs already wait.
    case queueFull
}

/// What renewing a lease found.
enum LeaseState: Sendable, Equatable {
    /// The worker still holds the job; `cancelRequested` when a client asked to stop it.
    case held(cancelRequested: Bool)
    /// The job is no longer this worker's (its lease expired and it went back to the queue, or it
    /// was deleted): the worker stops and throws its result away.
    case lost
}
