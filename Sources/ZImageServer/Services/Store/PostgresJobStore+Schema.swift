import Foundation
import PostgresNIO

extension PostgresJobStore {
    /// The schema, one version a step. Never edit a step that shipped: add one.
    static let migrations: [[PostgresQuery]] = [
        [
            """
            CREATE TABLE jobs (
                id text PRIMARY KEY,
                sequence bigserial NOT NULL,
                status text NOT NULL,
                parameters text NOT NULL,
                seed bigint NOT NULL,
                source text NOT NULL,
                "createdAt" double precision NOT NULL,
                "startedAt" double precision,
                "finishedAt" double precision,
                error text,
                "promptTruncated" boolean,
                worker text,
                "leaseExpiresAt" double precision,
                attempts integer NOT NULL DEFAULT 0,
                "cancelRequested" boolean NOT NULL DEFAULT false,
                "idempotencyKey" text UNIQUE,
                "requestDigest" text
            )
            """,
            "CREATE INDEX jobs_queued ON jobs (sequence) WHERE status = 'queued'",
            "CREATE INDEX jobs_status ON jobs (status, sequence)",
            """
            CREATE TABLE images (
                id text PRIMARY KEY,
                "jobId" text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
                "index" integer NOT NULL,
                seed bigint NOT NULL,
                width integer NOT NULL,
                height integer NOT NULL,
                infotext text NOT NULL,
                "createdAt" double precision NOT NULL,
                png bytea NOT NULL
            )
            """,
            "CREATE INDEX images_job ON images (\"jobId\", \"index\")",
        ],
    ]

    /// An arbitrary constant: the advisory lock every node takes to migrate, one at a time.
    static let migrationLock = 7_860_012

    /// Applies the steps not applied yet, in one transaction under an advisory lock, so nodes
    /// starting at once migrate one after the other and the later ones find nothing to do.
    func prepare() async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS zimage_schema (version integer PRIMARY KEY,
                                                          applied_at timestamptz NOT NULL DEFAULT now())
                """, logger: logger)
            var current = 0
            for try await version in try await connection.query(
                "SELECT COALESCE(max(version), 0)::bigint FROM zimage_schema", logger: logger).decode(Int.self) {
                current = version
            }
            for (index, step) in Self.migrations.enumerated() where index + 1 > current {
                for statement in step { try await connection.query(statement, logger: logger) }
                try await connection.query("INSERT INTO zimage_schema (version) VALUES (\(index + 1))", logger: logger)
                logger.info("database schema migrated", metadata: ["version": "\(index + 1)"])
            }
        }
    }
}
