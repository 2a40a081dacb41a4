import Foundation
import Testing
@testable import ZImageHub

/// The downloader against Tests/e2e/hub_server.py on 127.0.0.1 (standard-library Python): typed
/// results and errors. Tests/e2e/test_pull.py covers the command, interruption and huggingface_hub.
@Suite(.serialized) struct HubProtocolTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("e2e/hub_server.py").path
    static let commit = "0123456789abcdef0123456789abcdef01234567"

    final class Server {
        let process = Process()
        let endpoint: String

        init(root: String, arguments: [String] = []) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", HubProtocolTests.script, "--root", root] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            var line = Data()
            while let byte = try pipe.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
                line.append(byte)
            }
            let words = String(decoding: line, as: UTF8.self).split(separator: " ")
            guard words.first == "ready", words.count == 3 else { throw HubError.network(url: "hub_server.py", detail: "did not start") }
            endpoint = "http://127.0.0.1:\(words[1])"
        }

        deinit {
            // SIGKILL: the test runner's threads may block SIGTERM, and the child inherits that mask.
            let pid = process.processIdentifier
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
    }

    /// A repository with a plain file, a nested LFS file and a 1 MB LFS file.
    func makeRepo() throws -> (root: String, files: [String: Data]) {
        let root = try temporaryFolder()
        let files: [String: Data] = [
            "model_index.json": Data(#"{"_class_name": "ZImagePipeline"}"#.utf8),
            "vae/diffusion_pytorch_model.safetensors": Data((0..<4096).map { UInt8($0 % 251) }),
            "big.bin": Data((0..<(1 << 20)).map { UInt8(($0 * 7) % 256) }),
            "empty.txt": Data(),
        ]
        for (path, data) in files {
            let full = root + "/org/name/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: full))
        }
        return (root, files)
    }

    @Test func pullsIntoTheCacheLayout() async throws {
        let (root, files) = try makeRepo()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try Server(root: root, arguments: ["--token", "secret"])
        let cacheRoot = root + "/cache"
        let environment = HubEnvironment(endpoint: server.endpoint, token: "secret", cacheDirectory: cacheRoot)
        let progress = ProgressLog()
        let result = try await SnapshotDownloader(environment: environment)
            .pull(repo: RepositoryID("org/name")) { progress.add($0) }
        #expect(result.commit == Self.commit && result.files == 4)
        #expect(result.downloadedBytes == Int64(files.values.reduce(0) { $0 + $1.count }))
        for (path, data) in files {
            #expect(FileManager.default.contents(atPath: result.snapshot + "/" + path) == data, "\(path)")
        }
        #expect(progress.all.contains { $0.doneFiles == 4 && $0.doneBytes == $0.totalBytes })
        // Pulled again: nothing downloaded.
        let again = try await SnapshotDownloader(environment: environment).pull(repo: RepositoryID("org/name"))
        #expect(again.downloadedBytes == 0)
        // Only some files: the others stay out of the snapshot, which is then incomplete for --model.
        let partialCache = cacheRoot + "-partial"
        let some = try await SnapshotDownloader(environment: HubEnvironment(endpoint: server.endpoint, token: "secret",
                                                                            cacheDirectory: partialCache))
            .pull(repo: RepositoryID("org/name"), include: ["*.json"])
        #expect(some.files == 1 && FileManager.default.fileExists(atPath: some.snapshot + "/model_index.json"))
        #expect(!FileManager.default.fileExists(atPath: some.snapshot + "/big.bin"))
        #expect(throws: HubError.self) {
            try ModelLocator.resolve("org/name", environment: HubEnvironment(cacheDirectory: partialCache))
        }
        // A partial blob is resumed, not restarted.
        let cache = HubCache(root: cacheRoot, repo: try RepositoryID("org/name"))
        let big = try FileManager.default.destinationOfSymbolicLink(atPath: result.snapshot + "/big.bin")
        let etag = (big as NSString).lastPathComponent
        try FileManager.default.removeItem(atPath: cache.blob(etag))
        try files["big.bin"]!.prefix(300_000).write(to: URL(fileURLWithPath: cache.incomplete(etag)))
        let resumed = try await SnapshotDownloader(environment: environment).pull(repo: RepositoryID("org/name"))
        #expect(resumed.downloadedBytes == Int64(files["big.bin"]!.count - 300_000))
        #expect(FileManager.default.contents(atPath: result.snapshot + "/big.bin") == files["big.bin"])
    }

    @Test func droppedConnectionsAreResumedInProcess() async throws {
        let (root, files) = try makeRepo()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try Server(root: root, arguments: ["--drop-once", "100000", "--log", root + "/log.jsonl"])
        let environment = HubEnvironment(endpoint: server.endpoint, cacheDirectory: root + "/cache")
        let result = try await SnapshotDownloader(environment: environment).pull(repo: RepositoryID("org/name"))
        #expect(FileManager.default.contents(atPath: result.snapshot + "/big.bin") == files["big.bin"])
        let log = try String(contentsOfFile: root + "/log.jsonl", encoding: .utf8)
        // Resumed from what had arrived when the connection dropped (at most the 100,000 bytes sent).
        let resumed = log.split(separator: "\n").filter { $0.contains("big.bin") && $0.contains(#""status": 206"#) }
        #expect(resumed.count == 1 && resumed[0].contains(#""range": "bytes="#), "\(log)")
    }

    @Test func namesThatLeaveTheSnapshotAreRefused() async throws {
        let (root, _) = try makeRepo()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for name in ["../../../escape.txt", "/etc/passwd", "a//b", "./x"] {
            let server = try Server(root: root, arguments: ["--extra-sibling", name])
            let environment = HubEnvironment(endpoint: server.endpoint, cacheDirectory: root + "/cache")
            await #expect { try await SnapshotDownloader(environment: environment).pull(repo: RepositoryID("org/name")) }
                throws: { error in
                    guard case HubError.protocolViolation(_, let detail) = error else { return false }
                    return detail.contains("unsafe file name")
                }
        }
        #expect(!FileManager.default.fileExists(atPath: root + "/escape.txt"))
    }

    @Test func errorsAreTyped() async throws {
        let (root, _) = try makeRepo()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try Server(root: root, arguments: ["--corrupt", "big.bin", "--token", "secret"])
        let environment = HubEnvironment(endpoint: server.endpoint, token: "secret", cacheDirectory: root + "/cache")
        let downloader = SnapshotDownloader(environment: environment)
        await #expect { try await downloader.pull(repo: RepositoryID("org/name")) } throws: { error in
            guard case HubError.checksumMismatch(let file, "sha256", _, _) = error else { return false }
            return file == "big.bin"
        }
        let cache = HubCache(root: root + "/cache", repo: try RepositoryID("org/name"))
        #expect(!FileManager.default.fileExists(atPath: cache.snapshot(Self.commit) + "/big.bin"))
        await #expect(throws: HubError.repositoryNotFound(repo: "org/missing", tokenSent: true)) {
            try await downloader.pull(repo: RepositoryID("org/missing"))
        }
        await #expect(throws: HubError.revisionNotFound(repo: "org/name", revision: "v2")) {
            try await downloader.pull(repo: RepositoryID("org/name"), revision: "v2")
        }
        let wrong = SnapshotDownloader(environment: HubEnvironment(endpoint: server.endpoint, token: "nope",
                                                                   cacheDirectory: root + "/cache2"))
        await #expect { try await wrong.pull(repo: RepositoryID("org/name")) } throws: { error in
            guard case HubError.unauthorized(_, 401, true, _) = error else { return false }
            return true
        }
        let offline = SnapshotDownloader(environment: HubEnvironment(cacheDirectory: root + "/cache3", offline: true))
        await #expect(throws: HubError.offlineNotCached(repo: "org/name", revision: "main", cache: root + "/cache3")) {
            try await offline.pull(repo: RepositoryID("org/name"))
        }
    }
}

final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [SnapshotDownloader.Progress] = []

    func add(_ progress: SnapshotDownloader.Progress) {
        lock.lock()
        entries.append(progress)
        lock.unlock()
    }

    var all: [SnapshotDownloader.Progress] {
        lock.lock()
        defer { lock.unlock() }
        return entries
    }
}
