import Foundation
import GRDB
import ZImagePipeline

/// A generation job as stored in SQLite.
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

    func decodedParameters() throws -> GenerationParameters {
        try JSONDecoder().decode(GenerationParameters.self, from: Data(parameters.utf8))
    }
}

/// An image a job produced; its PNG lives in the data folder under `images/<id>.png`.
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

/// Jobs and images in SQLite (GRDB) in the data folder; image files beside it. Every write is a
/// transaction, so a crash leaves either the old or the new state.
final class JobStore: Sendable {
    let database: DatabaseQueue
    let imagesDirectory: String

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
        try migrator.migrate(database)
    }

    func imagePath(_ id: String) -> String { imagesDirectory + "/\(id).png" }

    /// The PNG of image `id`, read only when it is a regular file inside the images folder.
    func imageData(_ id: String) -> Data? { ContainedFolder(imagesDirectory)?.contents("\(id).png") }

    func nextSequence() throws -> Int64 {
        try database.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(sequence), 0) + 1 FROM jobs") ?? 1 }
    }

    func insert(_ job: JobRecord) throws { try database.write { db in try job.insert(db) } }

    func job(_ id: String) throws -> JobRecord? { try database.read { db in try JobRecord.fetchOne(db, key: id) } }

    func images(of jobId: String) throws -> [ImageRecord] {
        try database.read { db in
            try ImageRecord.filter(Column("jobId") == jobId).order(Column("index")).fetchAll(db)
        }
    }

    func image(_ id: String) throws -> ImageRecord? { try database.read { db in try ImageRecord.fetchOne(db, key: id) } }

    func update(_ id: String, _ change: @escaping @Sendable (inout JobRecord) -> Void) throws -> JobRecord? {
        try database.write { db in
            guard var job = try JobRecord.fetchOne(db, key: id) else { return nil }
            change(&job)
            try job.update(db)
            return job
        }
    }

    /// Marks a job done with its images, in one transaction (files are already written).
    func finish(_ id: String, images: [ImageRecord], promptTruncated: Bool, at time: Double) throws {
        try database.write { db in
            for image in images { try image.save(db) }
            if var job = try JobRecord.fetchOne(db, key: id) {
                job.status = .done
                job.promptTruncated = promptTruncated
                job.finishedAt = time
                try job.update(db)
            }
        }
    }

    /// After a restart: jobs that were running go back to the queue; returns the queue in order.
    func recoverQueue() throws -> [JobRecord] {
        try database.write { db in
            try db.execute(sql: "UPDATE jobs SET status = 'queued', startedAt = NULL WHERE status = 'running'")
            return try JobRecord.filter(Column("status") == JobRecord.Status.queued.rawValue)
                .order(Column("sequence")).fetchAll(db)
        }
    }

    /// Finished jobs, newest first: `limit` of them after the first `offset`.
    func history(offset: Int, limit: Int) throws -> (total: Int, jobs: [JobRecord]) {
        try database.read { db in
            let request = JobRecord.filter(Column("status") == JobRecord.Status.done.rawValue)
            let total = try request.fetchCount(db)
            let jobs = try request.order(Column("sequence").desc).limit(limit, offset: offset).fetchAll(db)
            return (total, jobs)
        }
    }

    /// Deletes a finished job, its image rows and files. Returns false when there is no such job.
    func delete(_ id: String) throws -> Bool {
        let images = try images(of: id)
        let deleted = try database.write { db in try JobRecord.deleteOne(db, key: id) }
        for image in images { try? FileManager.default.removeItem(atPath: imagePath(image.id)) }
        return deleted
    }

    func count(status: JobRecord.Status) throws -> Int {
        try database.read { db in try JobRecord.filter(Column("status") == status.rawValue).fetchCount(db) }
    }
}
