import Foundation
import Logging
import PostgresNIO
import Testing
@testable import ZImageServer

/// The store contract every `JobStore` keeps, run against SQLite and (when `ZIMAGE_TEST_POSTGRES_URL`
/// names a server) PostgreSQL: a job is claimed by one worker only, an expired lease re-queues it
/// exactly once, and a worker that lost its lease cannot record anything.
@Suite struct JobStoreTests {
    static func newJob(_ name: String, key: String? = nil, digest: String? = nil) -> NewJob {
        NewJob(id: UUID().uuidString.lowercased(), parameters: #"{"prompt":"\#(name)"}"#, seed: 1, source: "test",
               createdAt: Date().timeIntervalSince1970, idempotencyKey: key, requestDigest: digest)
    }

    static func image(for job: String) -> StoredImage {
        StoredImage(record: ImageRecord(id: UUID().uuidString.lowercased(), jobId: job, index: 0, seed: 1, width: 1,
                                        height: 1, infotext: "x", createdAt: 0), png: Data([1, 2, 3]))
    }

    @Test(arguments: StoreKind.available)
    func racingWorkersNeverClaimAJobTwice(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            var ids: [String] = []
            for index in 0..<30 {
                guard case .queued(let job) = try await store.submit(Self.newJob("job \(index)"), maxQueued: 100) else {
                    Issue.record("not queued"); return
                }
                ids.append(job.id)
            }
            // Eight workers claim and finish as fast as they can, all at once.
            let claims = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var mine: [String] = []
                        while let job = try await store.claim(worker: "w\(worker)", leaseSeconds: 30) {
                            mine.append(job.id)
                            #expect(try await store.complete(job.id, worker: "w\(worker)", images: [Self.image(for: job.id)],
                                                             promptTruncated: false))
                        }
                        return mine
                    }
                }
                var all: [[String]] = []
                for try await claimed in group { all.append(claimed) }
                return all
            }
            let claimed = claims.flatMap { $0 }
            #expect(claimed.count == ids.count, "every job claimed once: \(claimed.count) claims of \(ids.count) jobs")
            #expect(Set(claimed) == Set(ids))
            for id in ids {
                #expect(try await store.job(id)?.status == .done)
                #expect(try await store.images(of: id).count == 1)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func anExpiredLeaseRequeuesExactlyOnce(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            guard case .queued(let job) = try await store.submit(Self.newJob("dies"), maxQueued: 10) else {
                Issue.record("not queued"); return
            }
            let first = try #require(try await store.claim(worker: "dead/0", leaseSeconds: 30))
            #expect(first.id == job.id && first.attempts == 1 && first.status == .running)
            #expect(try await store.claim(worker: "other/0", leaseSeconds: 30) == nil, "a running job is not claimable")
            #expect(try await store.requeueExpired(maxAttempts: 3).isEmpty, "the lease has not run out yet")
            // Its last renewal gives it 0.2 s more; then its node dies.
            #expect(try await store.renew(job.id, worker: "dead/0", leaseSeconds: 0.2) == .held(cancelRequested: false))
            try await Task.sleep(for: .milliseconds(600))
            // Three reapers at once (three nodes): the job goes back once.
            let requeued = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<3 { group.addTask { try await store.requeueExpired(maxAttempts: 3) } }
                var all: [String] = []
                for try await ids in group { all += ids }
                return all
            }
            #expect(requeued == [job.id])
            #expect(try await store.job(job.id)?.status == .queued)
            // The dead worker's late writes are refused.
            #expect(try await store.renew(job.id, worker: "dead/0", leaseSeconds: 30) == .lost)
            #expect(try await !store.complete(job.id, worker: "dead/0", images: [Self.image(for: job.id)], promptTruncated: false))
            #expect(try await !store.finish(job.id, worker: "dead/0", status: .failed, error: "late"))
            #expect(try await store.images(of: job.id).isEmpty)
            // Another worker takes it and finishes it.
            let second = try #require(try await store.claim(worker: "alive/0", leaseSeconds: 30))
            #expect(second.id == job.id && second.attempts == 2 && second.worker == "alive/0")
            #expect(try await !store.complete(job.id, worker: "dead/0", images: [Self.image(for: job.id)], promptTruncated: false))
            #expect(try await store.complete(job.id, worker: "alive/0", images: [Self.image(for: job.id)], promptTruncated: false))
            #expect(try await store.job(job.id)?.status == .done)
            #expect(try await store.images(of: job.id).count == 1)
            #expect(try await store.requeueExpired(maxAttempts: 3).isEmpty)
        }
    }

    @Test(arguments: StoreKind.available)
    func aJobWhoseNodesKeepDyingFailsAfterMaxAttempts(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            guard case .queued(let job) = try await store.submit(Self.newJob("poison"), maxQueued: 10) else {
                Issue.record("not queued"); return
            }
            for attempt in 1...2 {
                _ = try #require(try await store.claim(worker: "n\(attempt)/0", leaseSeconds: 0.1))
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await store.requeueExpired(maxAttempts: 2) == [job.id])
            }
            let failed = try #require(try await store.job(job.id))
            #expect(failed.status == .failed && failed.error?.contains("gave up after 2 attempts") == true)
            #expect(try await store.claim(worker: "n3/0", leaseSeconds: 30) == nil)
        }
    }

    @Test(arguments: StoreKind.available)
    func cancelReleaseAndQueueOrder(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            var ids: [String] = []
            for name in ["a", "b", "c"] {
                guard case .queued(let job) = try await store.submit(Self.newJob(name), maxQueued: 3) else {
                    Issue.record("not queued"); return
                }
                ids.append(job.id)
            }
            #expect(try await store.submit(Self.newJob("d"), maxQueued: 3) == .queueFull)
            #expect(try await store.position(of: ids[2]) == 3)
            let running = try #require(try await store.claim(worker: "w/0", leaseSeconds: 30))
            #expect(running.id == ids[0], "oldest first")
            #expect(try await store.position(of: ids[0]) == 0)
            #expect(try await store.position(of: ids[1]) == 1)
            #expect(try await !store.cancelQueued(ids[0]), "a running job is not cancelled as a queued one")
            #expect(try await store.requestCancel(ids[0]))
            #expect(try await store.renew(ids[0], worker: "w/0", leaseSeconds: 30) == .held(cancelRequested: true))
            #expect(try await store.cancelQueued(ids[1]))
            #expect(try await store.job(ids[1])?.status == .cancelled)
            #expect(try await !store.requestCancel(ids[1]))
            // A graceful stop gives the claim back without counting it.
            #expect(try await store.release(ids[0], worker: "w/0", countAttempt: false, error: nil))
            let again = try #require(try await store.claim(worker: "w/1", leaseSeconds: 30))
            #expect(again.id == ids[0] && again.attempts == 1 && !again.cancelRequested)
            #expect(try await store.finish(ids[0], worker: "w/1", status: .cancelled, error: nil))
            #expect(try await store.running().isEmpty)
            #expect(try await store.queued().map(\.id) == [ids[2]])
        }
    }

    @Test(arguments: StoreKind.available)
    func idempotencyKeysReplayTheFirstJob(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            guard case .queued(let first) = try await store.submit(Self.newJob("x", key: "k-1", digest: "d1"), maxQueued: 1)
            else { Issue.record("not queued"); return }
            // The same key and request: the first job, even with the queue full.
            #expect(try await store.submit(Self.newJob("x", key: "k-1", digest: "d1"), maxQueued: 1) == .replayed(first))
            guard case .keyReused(let other) = try await store.submit(Self.newJob("y", key: "k-1", digest: "d2"), maxQueued: 10)
            else { Issue.record("a reused key was accepted"); return }
            #expect(other.id == first.id)
            // Many retries at once make one job.
            let outcomes = try await withThrowingTaskGroup(of: SubmitOutcome.self) { group in
                for _ in 0..<8 { group.addTask { try await store.submit(Self.newJob("z", key: "k-2", digest: "d"), maxQueued: 10) } }
                var all: [SubmitOutcome] = []
                for try await outcome in group { all.append(outcome) }
                return all
            }
            let queued = outcomes.filter { if case .queued = $0 { true } else { false } }
            #expect(queued.count == 1 && outcomes.count == 8)
            #expect(try await store.queued().filter { $0.idempotencyKey == "k-2" }.count == 1)
        }
    }
}

/// PostgreSQL only: nodes starting at once migrate the schema one after the other.
@Suite struct PostgresMigrationTests {
    @Test(.enabled(if: PostgresTestDatabase.url != nil, "ZIMAGE_TEST_POSTGRES_URL is not set (scripts/test.sh sets it)"))
    func nodesStartingAtOnceMigrateOnce() async throws {
        try await PostgresTestDatabase.withFreshDatabase { url in
            let clients = try (0..<4).map { _ in
                PostgresClient(configuration: try PostgresLocation(url).clientConfiguration, backgroundLogger: Logger(label: "test"))
            }
            try await withThrowingTaskGroup(of: Void.self) { running in
                for client in clients { running.addTask { await client.run() } }
                // Four nodes, each with its own connections, migrate at the same moment.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for client in clients {
                        group.addTask { try await PostgresJobStore(client: client, logger: Logger(label: "test")).prepare() }
                    }
                    try await group.waitForAll()
                }
                var versions: [Int] = []
                for try await version in try await clients[0].query("SELECT version FROM zimage_schema ORDER BY version")
                    .decode(Int.self) {
                    versions.append(version)
                }
                #expect(versions == Array(1...PostgresJobStore.migrations.count))
                let store = PostgresJobStore(client: clients[1], logger: Logger(label: "test"))
                #expect(try await store.queued().isEmpty)
                running.cancelAll()
            }
        }
    }
}

/// The stores the contract tests run against.
enum StoreKind: String, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    var testDescription: String { rawValue }

    /// SQLite always; PostgreSQL when `ZIMAGE_TEST_POSTGRES_URL` is set (scripts/test.sh sets it
    /// and requires it; without it the PostgreSQL cases are left out, saying so once).
    static var available: [StoreKind] {
        if PostgresTestDatabase.url != nil { return [.sqlite, .postgres] }
        print("JobStoreTests: ZIMAGE_TEST_POSTGRES_URL is not set; PostgreSQL cases skipped (scripts/test.sh runs them)")
        return [.sqlite]
    }

    func withStore(_ body: @Sendable (any JobStore) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            try await body(SQLiteJobStore(dataDirectory: temporaryDataDirectory()))
        case .postgres:
            try await PostgresTestDatabase.withFreshDatabase { url in
                let client = PostgresClient(configuration: try PostgresLocation(url).clientConfiguration,
                                            backgroundLogger: Logger(label: "test"))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await client.run() }
                    let store = PostgresJobStore(client: client, logger: Logger(label: "test"))
                    try await store.prepare()
                    try await store.prepare()  // a second node starting finds nothing to do
                    try await body(store)
                    group.cancelAll()
                }
            }
        }
    }
}

/// A database of its own for each test, on the server `ZIMAGE_TEST_POSTGRES_URL` names.
enum PostgresTestDatabase {
    static var url: String? {
        ProcessInfo.processInfo.environment["ZIMAGE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static func withFreshDatabase(_ body: (String) async throws -> Void) async throws {
        let base = try #require(url)
        let name = "zimage_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = PostgresClient(configuration: try PostgresLocation(base).clientConfiguration,
                                   backgroundLogger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await admin.run() }
            try await admin.query("CREATE DATABASE \(unescaped: name)")
            var components = try #require(URLComponents(string: base))
            components.path = "/" + name
            let databaseURL = try #require(components.string)
            do {
                try await body(databaseURL)
            } catch {
                try? await admin.query("DROP DATABASE \(unescaped: name) WITH (FORCE)")
                throw error
            }
            try? await admin.query("DROP DATABASE \(unescaped: name) WITH (FORCE)")
            group.cancelAll()
        }
    }
}

/// CI (scripts/test.sh) sets `ZIMAGE_REQUIRE_POSTGRES=1`: there the PostgreSQL cases must run.
@Suite struct PostgresRequirementTests {
    @Test func postgresIsThereWhenRequired() {
        let environment = ProcessInfo.processInfo.environment
        if environment["ZIMAGE_REQUIRE_POSTGRES"] == "1" {
            #expect(PostgresTestDatabase.url != nil, "ZIMAGE_REQUIRE_POSTGRES=1 but ZIMAGE_TEST_POSTGRES_URL is not set")
        }
    }
}
