import Foundation
import GRDB

/// Jobs and images in SQLite (GRDB) in the data folder, image files beside it: the embedded store
/// of one process. Every write is a transaction, so a crash leaves either the old or the new state;
/// SQLite runs one write transaction at a time, so a claim is atomic among this process's workers.
final class SQLiteJobStore: JobStore {
    let database: DatabaseQueue
    let imagesDirectory: String
    var kind: String { "sqlite" }
    var isShared: Bool { false }

    init(dataDirectory: String) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory + "/images", withIntermediateDirectories: true)
        imagesDirectory = dataDirectory + "/images"
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        database = try DatabaseQueue(path: dataDirectory + "/zimage.sqlite", configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "jobs") { t in
                t.primaryKey("id", .text)
                t.column("sequence", .integer).notNull().indexed()
                t.column("status", .text).notNull().indexed()
                t.column("parameters", .text).notNull()
                t.column("seed", .integer).notNull()
                t.column("source", .text).notNull()
                t.column("createdAt", .double).notNull()
                t.column("startedAt", .double)
                t.column("finishedAt", .double)
                t.column("error", .text)
            }
            try db.create(table: "images") { t in
                t.primaryKey("id", .text)
                t.column("jobId", .text).notNull().indexed().references("jobs", onDelete: .cascade)
                t.column("index", .integer).notNull()
                t.column("seed", .integer).notNull()
                t.column("width", .integer).notNull()
                t.column("height", .integer).notNull()
                t.column("infotext", .text).notNull()
                t.column("createdAt", .double).notNull()
            }
        }
        migrator.registerMigration("v2: prompt truncation") { db in
            try db.alter(table: "jobs") { t in t.add(column: "promptTruncated", .boolean) }
        }
        migrator.registerMigration("v3: leases and idempotency keys") { db in
            try db.alter(table: "jobs") { t in
                t.add(column: "worker", .text)
                t.add(column: "leaseExpiresAt", .double)
                t.add(column: "attempts", .integer).notNull().defaults(to: 0)
                t.add(column: "cancelRequested", .boolean).notNull().defaults(to: false)
                t.add(column: "idempotencyKey", .text)
                t.add(column: "requestDigest", .text)
            }
            try db.create(index: "jobs_idempotency_key", on: "jobs", columns: ["idempotencyKey"], unique: true)
        }
        try migrator.migrate(database)
    }

    private static var now: Double { Date().timeIntervalSince1970 }

    func imagePath(_ id: String) -> String { imagesDirectory + "/\(id).png" }

    /// The PNG of image `id`, read only when it is a regular file inside the images folder.
    func imageData(_ id: String) async throws -> Data? { ContainedFolder(imagesDirectory)?.contents("\(id).png") }

    func submit(_ new: NewJob, maxQueued: Int) async throws -> SubmitOutcome {
        try await database.write { db in
            if let key = new.idempotencyKey,
               let existing = try JobRecord.filter(Column("idempotencyKey") == key).fetchOne(db) {
                return existing.requestDigest == new.requestDigest ? .replayed(existing) : .keyReused(existing)
            }
            let waiting = try JobRecord.filter(Column("status") == JobRecord.Status.queued.rawValue).fetchCount(db)
            guard waiting < maxQueued else { return .queueFull }
            let sequence = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(sequence), 0) + 1 FROM jobs") ?? 1
            let job = JobRecord(id: new.id, sequence: sequence, status: .queued, parameters: new.parameters, seed: new.seed,
                                source: new.source, createdAt: new.createdAt, idempotencyKey: new.idempotencyKey,
                                requestDigest: new.requestDigest)
            try job.insert(db)
            return .queued(job)
        }
    }

    func job(_ id: String) async throws -> JobRecord? { try await database.read { db in try JobRecord.fetchOne(db, key: id) } }

    func queued() async throws -> [JobRecord] {
        try await database.read { db in
            try JobRecord.filter(Column("status") == JobRecord.Status.queued.rawValue).order(Column("sequence")).fetchAll(db)
        }
    }

    func running() async throws -> [JobRecord] {
        try await database.read { db in
            try JobRecord.filter(Column("status") == JobRecord.Status.running.rawValue)
                .order(Column("startedAt"), Column("sequence")).fetchAll(db)
        }
    }

    func position(of id: String) async throws -> Int? {
        try await database.read { db in
            guard let job = try JobRecord.fetchOne(db, key: id) else { return nil }
            switch job.status {
            case .running: return 0
            case .queued:
                return try JobRecord.filter(Column("status") == JobRecord.Status.queued.rawValue
                                            && Column("sequence") <= job.sequence).fetchCount(db)
            default: return nil
            }
        }
    }

    func count(status: JobRecord.Status) async throws -> Int {
        try await database.read { db in try JobRecord.filter(Column("status") == status.rawValue).fetchCount(db) }
    }

    func history(offset: Int, limit: Int) async throws -> (total: Int, jobs: [JobRecord]) {
        try await database.read { db in
            let request = JobRecord.filter(Column("status") == JobRecord.Status.done.rawValue)
            let total = try request.fetchCount(db)
            let jobs = try request.order(Column("sequence").desc).limit(limit, offset: offset).fetchAll(db)
            return (total, jobs)
        }
    }

    func images(of jobId: String) async throws -> [ImageRecord] {
        try await database.read { db in
            try ImageRecord.filter(Column("jobId") == jobId).order(Column("index")).fetchAll(db)
        }
    }

    func image(_ id: String) async throws -> ImageRecord? {
        try await database.read { db in try ImageRecord.fetchOne(db, key: id) }
    }

    func delete(_ id: String) async throws -> Bool {
        let images = try await images(of: id)
        let deleted = try await database.write { db in try JobRecord.deleteOne(db, key: id) }
        for image in images { try? FileManager.default.removeItem(atPath: imagePath(image.id)) }
        return deleted
    }

    func cancelQueued(_ id: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "UPDATE jobs SET status = 'cancelled', finishedAt = ? WHERE id = ? AND status = 'queued'",
                           arguments: [Self.now, id])
            return db.changesCount == 1
        }
    }

    func requestCancel(_ id: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "UPDATE jobs SET cancelRequested = 1 WHERE id = ? AND status = 'running'", arguments: [id])
            return db.changesCount == 1
        }
    }

    // MARK: Workers

    func claim(worker: String, leaseSeconds: Double) async throws -> JobRecord? {
        try await database.write { db in
            guard var job = try JobRecord.filter(Column("status") == JobRecord.Status.queued.rawValue)
                .order(Column("sequence")).fetchOne(db) else { return nil }
            let now = Self.now
            job.status = .running
            job.worker = worker
            job.startedAt = now
            job.leaseExpiresAt = now + leaseSeconds
            job.attempts += 1
            job.cancelRequested = false
            try job.update(db)
            return job
        }
    }

    func renew(_ id: String, worker: String, leaseSeconds: Double) async throws -> LeaseState {
        try await database.write { db in
            try db.execute(sql: "UPDATE jobs SET leaseExpiresAt = ? WHERE id = ? AND status = 'running' AND worker = ?",
                           arguments: [Self.now + leaseSeconds, id, worker])
            guard db.changesCount == 1 else { return .lost }
            let cancel = try Bool.fetchOne(db, sql: "SELECT cancelRequested FROM jobs WHERE id = ?", arguments: [id])
            return .held(cancelRequested: cancel ?? false)
        }
    }

    func complete(_ id: String, worker: String, images: [StoredImage], promptTruncated: Bool) async throws -> Bool {
        // Files first (a crash leaves at most unreferenced files), then one transaction that
        // records them only while the lease is still this worker's.
        for image in images { try image.png.write(to: URL(fileURLWithPath: imagePath(image.record.id)), options: .atomic) }
        let recorded = try await database.write { db -> Bool in
            try db.execute(sql: """
                UPDATE jobs SET status = 'done', promptTruncated = ?, finishedAt = ?, leaseExpiresAt = NULL, error = NULL
                WHERE id = ? AND status = 'running' AND worker = ?
                """, arguments: [promptTruncated, Self.now, id, worker])
            guard db.changesCount == 1 else { return false }
            for image in images { try image.record.insert(db) }
            return true
        }
        if !recorded { for image in images { try? FileManager.default.removeItem(atPath: imagePath(image.record.id)) } }
        return recorded
    }

    func finish(_ id: String, worker: String, status: JobRecord.Status, error: String?) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: """
                UPDATE jobs SET status = ?, error = ?, finishedAt = ?, leaseExpiresAt = NULL
                WHERE id = ? AND status = 'running' AND worker = ?
                """, arguments: [status.rawValue, error, Self.now, id, worker])
            return db.changesCount == 1
        }
    }

    func release(_ id: String, worker: String, countAttempt: Bool, error: String?) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: """
                UPDATE jobs SET status = 'queued', startedAt = NULL, leaseExpiresAt = NULL, worker = NULL,
                    attempts = attempts - ?, error = ?
                WHERE id = ? AND status = 'running' AND worker = ?
                """, arguments: [countAttempt ? 0 : 1, error, id, worker])
            return db.changesCount == 1
        }
    }

    func requeueExpired(maxAttempts: Int) async throws -> [String] {
        try await database.write { db in
            let now = Self.now
            let expired = try String.fetchAll(db, sql: """
                SELECT id FROM jobs WHERE status = 'running' AND leaseExpiresAt IS NOT NULL AND leaseExpiresAt < ?
                """, arguments: [now])
            for id in expired {
                try db.execute(sql: """
                    UPDATE jobs SET
                        status = CASE WHEN attempts >= ? THEN 'failed' ELSE 'queued' END,
                        error = CASE WHEN attempts >= ? THEN ? ELSE error END,
                        finishedAt = CASE WHEN attempts >= ? THEN ? ELSE NULL END,
                        startedAt = NULL, leaseExpiresAt = NULL, worker = NULL
                    WHERE id = ?
                    """, arguments: [maxAttempts, maxAttempts, LeasePolicy.gaveUpMessage(maxAttempts), maxAttempts, now, id])
            }
            return expired
        }
    }

    func recoverAfterRestart() async throws {
        try await database.write { db in
            try db.execute(sql: """
                UPDATE jobs SET status = 'queued', startedAt = NULL, leaseExpiresAt = NULL, worker = NULL
                WHERE status = 'running'
                """)
        }
    }

    /// The schema is migrated when the store opens.
    func prepare() async throws {}

    func broadcast(_ message: ClusterMessage) {}

    func listen(_ handler: @escaping @Sendable (ClusterMessage) async -> Void) async throws {}
}

/// How long leases last and how often a job may be claimed.
struct LeasePolicy: Sendable {
    /// A running job's lease; its worker renews it every `renewInterval`.
    var leaseSeconds: Double = 30
    /// How often a worker renews its lease and checks for a cancel request (never more than a second,
    /// so a cancel sent to another node stops the job within about a second).
    var renewInterval: Double { min(leaseSeconds / 3, 1) }
    /// A job claimed this many times (its nodes died or its devices failed) fails instead of going back to the queue.
    var maxAttempts = 3
    /// A job whose engine failed on a device is retried (on a rebuilt or another worker) while it
    /// was claimed fewer times than this; after that the failure is the job's.
    var maxEngineAttempts = 2

    static func gaveUpMessage(_ attempts: Int) -> String {
        "gave up after \(attempts) attempts: the nodes running this job stopped before it finished"
    }
}
