import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Jobs, images (PNG bytes in `images.png`) and the queue in PostgreSQL, shared by every node.
/// Workers claim with `SELECT … FOR UPDATE SKIP LOCKED`, so two nodes never take the same job;
/// times are the database's clock, so nodes' clocks need not agree; nodes talk through
/// LISTEN/NOTIFY on the channel `zimage` (wake-ups, progress, cancel).
final class PostgresJobStore: JobStore {
    let client: PostgresClient
    let logger: Logger
    var kind: String { "postgresql" }
    var isShared: Bool { true }
    static let channel = "zimage"
    /// Messages to send, in order, by the one sender task.
    private let outgoingContinuation: AsyncStream<ClusterMessage>.Continuation
    private let sender: Task<Void, Never>

    /// The client must be running (`client.run()`, a service of the application) for queries to go out.
    init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
        let (outgoing, continuation) = AsyncStream<ClusterMessage>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        outgoingContinuation = continuation
        // The one sender: notifications leave in the order they were broadcast, until the store goes.
        sender = Task { [client, logger] in
            let encoder = JSONEncoder()
            for await message in outgoing {
                guard let data = try? encoder.encode(message), data.count < 7900 else { continue }
                let text = String(decoding: data, as: UTF8.self)
                do {
                    try await client.query("SELECT pg_notify(\(Self.channel), \(text))", logger: logger)
                } catch {
                    logger.warning("could not notify the other nodes", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    deinit {
        outgoingContinuation.finish()
        sender.cancel()
    }

    /// The database clock, in seconds since 1970.
    private static let now = "extract(epoch from clock_timestamp())::double precision"

    private func jobs(_ query: PostgresQuery) async throws -> [JobRecord] {
        var result: [JobRecord] = []
        let decoder = JSONDecoder()
        for try await text in try await client.query(query, logger: logger).decode(String.self) {
            result.append(try decoder.decode(JobRecord.self, from: Data(text.utf8)))
        }
        return result
    }

    private func jobs(_ query: PostgresQuery, on connection: PostgresConnection) async throws -> [JobRecord] {
        var result: [JobRecord] = []
        let decoder = JSONDecoder()
        for try await text in try await connection.query(query, logger: logger).decode(String.self) {
            result.append(try decoder.decode(JobRecord.self, from: Data(text.utf8)))
        }
        return result
    }

    private func count(_ query: PostgresQuery) async throws -> Int {
        for try await value in try await client.query(query, logger: logger).decode(Int.self) { return value }
        return 0
    }

    private func ids(_ query: PostgresQuery) async throws -> [String] {
        var result: [String] = []
        for try await id in try await client.query(query, logger: logger).decode(String.self) { result.append(id) }
        return result
    }

    // MARK: Clients

    func submit(_ new: NewJob, maxQueued: Int) async throws -> SubmitOutcome {
        try await client.withTransaction(logger: logger) { connection in
            if let key = new.idempotencyKey, let existing = try await jobs(
                "SELECT row_to_json(jobs)::text FROM jobs WHERE \"idempotencyKey\" = \(key)", on: connection).first {
                return existing.requestDigest == new.requestDigest ? .replayed(existing) : .keyReused(existing)
            }
            var waiting = 0
            for try await value in try await connection.query(
                "SELECT count(*)::bigint FROM jobs WHERE status = 'queued'", logger: logger).decode(Int.self) { waiting = value }
            guard waiting < maxQueued else { return .queueFull }
            let inserted = try await jobs("""
                INSERT INTO jobs (id, status, parameters, seed, source, "createdAt", "idempotencyKey", "requestDigest")
                VALUES (\(new.id), 'queued', \(new.parameters), \(new.seed), \(new.source), \(unescaped: Self.now),
                        \(new.idempotencyKey), \(new.requestDigest))
                ON CONFLICT ("idempotencyKey") DO NOTHING
                RETURNING row_to_json(jobs)::text
                """, on: connection)
            if let job = inserted.first { return .queued(job) }
            // Another node inserted the same key a moment ago.
            guard let key = new.idempotencyKey, let existing = try await jobs(
                "SELECT row_to_json(jobs)::text FROM jobs WHERE \"idempotencyKey\" = \(key)", on: connection).first else {
                throw PostgresStoreError.insertFailed
            }
            return existing.requestDigest == new.requestDigest ? .replayed(existing) : .keyReused(existing)
        }
    }

    func job(_ id: String) async throws -> JobRecord? {
        try await jobs("SELECT row_to_json(jobs)::text FROM jobs WHERE id = \(id)").first
    }

    func queued() async throws -> [JobRecord] {
        try await jobs("SELECT row_to_json(jobs)::text FROM jobs WHERE status = 'queued' ORDER BY sequence")
    }

    func running() async throws -> [JobRecord] {
        try await jobs("SELECT row_to_json(jobs)::text FROM jobs WHERE status = 'running' ORDER BY \"startedAt\", sequence")
    }

    func position(of id: String) async throws -> Int? {
        guard let job = try await job(id) else { return nil }
        switch job.status {
        case .running: return 0
        case .queued:
            return try await count("""
                SELECT count(*)::bigint FROM jobs WHERE status = 'queued' AND sequence <= \(job.sequence)
                """)
        default: return nil
        }
    }

    func count(status: JobRecord.Status) async throws -> Int {
        try await count("SELECT count(*)::bigint FROM jobs WHERE status = \(status.rawValue)")
    }

    func history(offset: Int, limit: Int) async throws -> (total: Int, jobs: [JobRecord]) {
        let total = try await count(status: .done)
        let page = try await jobs("""
            SELECT row_to_json(jobs)::text FROM jobs WHERE status = 'done' ORDER BY sequence DESC
            LIMIT \(limit) OFFSET \(offset)
            """)
        return (total, page)
    }

    private func imageRecords(_ query: PostgresQuery) async throws -> [ImageRecord] {
        var result: [ImageRecord] = []
        let decoder = JSONDecoder()
        for try await text in try await client.query(query, logger: logger).decode(String.self) {
            result.append(try decoder.decode(ImageRecord.self, from: Data(text.utf8)))
        }
        return result
    }

    func images(of jobId: String) async throws -> [ImageRecord] {
        try await imageRecords("""
            SELECT row_to_json(i)::text FROM (SELECT id, "jobId", "index", seed, width, height, infotext, "createdAt"
            FROM images WHERE "jobId" = \(jobId) ORDER BY "index") i
            """)
    }

    func image(_ id: String) async throws -> ImageRecord? {
        try await imageRecords("""
            SELECT row_to_json(i)::text FROM (SELECT id, "jobId", "index", seed, width, height, infotext, "createdAt"
            FROM images WHERE id = \(id)) i
            """).first
    }

    func imageData(_ id: String) async throws -> Data? {
        for try await bytes in try await client.query("SELECT png FROM images WHERE id = \(id)", logger: logger)
            .decode(ByteBuffer.self) {
            return Data(bytes.readableBytesView)
        }
        return nil
    }

    func delete(_ id: String) async throws -> Bool {
        try await !ids("DELETE FROM jobs WHERE id = \(id) RETURNING id").isEmpty
    }

    func cancelQueued(_ id: String) async throws -> Bool {
        try await !ids("""
            UPDATE jobs SET status = 'cancelled', "finishedAt" = \(unescaped: Self.now)
            WHERE id = \(id) AND status = 'queued' RETURNING id
            """).isEmpty
    }

    func requestCancel(_ id: String) async throws -> Bool {
        try await !ids("""
            UPDATE jobs SET "cancelRequested" = true WHERE id = \(id) AND status = 'running' RETURNING id
            """).isEmpty
    }

    // MARK: Workers

    func claim(worker: String, leaseSeconds: Double) async throws -> JobRecord? {
        try await jobs("""
            UPDATE jobs SET status = 'running', worker = \(worker), "startedAt" = \(unescaped: Self.now),
                "leaseExpiresAt" = \(unescaped: Self.now) + \(leaseSeconds), attempts = attempts + 1,
                "cancelRequested" = false
            WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY sequence LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING row_to_json(jobs)::text
            """).first
    }

    func renew(_ id: String, worker: String, leaseSeconds: Double) async throws -> LeaseState {
        for try await cancel in try await client.query("""
            UPDATE jobs SET "leaseExpiresAt" = \(unescaped: Self.now) + \(leaseSeconds)
            WHERE id = \(id) AND status = 'running' AND worker = \(worker) RETURNING "cancelRequested"
            """, logger: logger).decode(Bool.self) {
            return .held(cancelRequested: cancel)
        }
        return .lost
    }

    func complete(_ id: String, worker: String, images: [StoredImage], promptTruncated: Bool) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            var updated = false
            for try await _ in try await connection.query("""
                UPDATE jobs SET status = 'done', "promptTruncated" = \(promptTruncated),
                    "finishedAt" = \(unescaped: Self.now), "leaseExpiresAt" = NULL, error = NULL
                WHERE id = \(id) AND status = 'running' AND worker = \(worker) RETURNING id
                """, logger: logger).decode(String.self) { updated = true }
            guard updated else { return false }
            for image in images {
                let record = image.record
                try await connection.query("""
                    INSERT INTO images (id, "jobId", "index", seed, width, height, infotext, "createdAt", png)
                    VALUES (\(record.id), \(record.jobId), \(record.index), \(record.seed), \(record.width),
                            \(record.height), \(record.infotext), \(record.createdAt), \(ByteBuffer(bytes: image.png)))
                    """, logger: logger)
            }
            return true
        }
    }

    func finish(_ id: String, worker: String, status: JobRecord.Status, error: String?) async throws -> Bool {
        try await !ids("""
            UPDATE jobs SET status = \(status.rawValue), error = \(error), "finishedAt" = \(unescaped: Self.now),
                "leaseExpiresAt" = NULL
            WHERE id = \(id) AND status = 'running' AND worker = \(worker) RETURNING id
            """).isEmpty
    }

    func release(_ id: String, worker: String, countAttempt: Bool, error: String?) async throws -> Bool {
        try await !ids("""
            UPDATE jobs SET status = 'queued', "startedAt" = NULL, "leaseExpiresAt" = NULL, worker = NULL,
                attempts = attempts - \(countAttempt ? 0 : 1), error = \(error)
            WHERE id = \(id) AND status = 'running' AND worker = \(worker) RETURNING id
            """).isEmpty
    }

    func requeueExpired(maxAttempts: Int) async throws -> [String] {
        // One UPDATE: a row another node changes first no longer matches when this one gets its lock.
        try await ids("""
            UPDATE jobs SET
                status = CASE WHEN attempts >= \(maxAttempts) THEN 'failed' ELSE 'queued' END,
                error = CASE WHEN attempts >= \(maxAttempts) THEN \(LeasePolicy.gaveUpMessage(maxAttempts)) ELSE error END,
                "finishedAt" = CASE WHEN attempts >= \(maxAttempts) THEN \(unescaped: Self.now) ELSE NULL END,
                "startedAt" = NULL, "leaseExpiresAt" = NULL, worker = NULL
            WHERE status = 'running' AND "leaseExpiresAt" < \(unescaped: Self.now)
            RETURNING id
            """)
    }

    func recoverAfterRestart() async throws {}

    // MARK: Events between nodes

    func broadcast(_ message: ClusterMessage) { outgoingContinuation.yield(message) }

    func listen(_ handler: @escaping @Sendable (ClusterMessage) async -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: Self.channel) { notifications in
                let decoder = JSONDecoder()
                for try await notification in notifications {
                    guard let message = try? decoder.decode(ClusterMessage.self, from: Data(notification.payload.utf8))
                    else { continue }
                    await handler(message)
                }
            }
        }
    }
}

/// What went wrong in the PostgreSQL store.
enum PostgresStoreError: Error, CustomStringConvertible {
    case insertFailed
    var description: String {
        switch self {
        case .insertFailed: "the job could not be inserted"
        }
    }
}
