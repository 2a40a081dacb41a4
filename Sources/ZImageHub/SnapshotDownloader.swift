import Foundation
import NIOConcurrencyHelpers

/// `snapshot_download` into huggingface_hub's cache: the revision's commit and file listing, then
/// every file in parallel (resumed, verified, linked into `snapshots/<commit>/`), `refs/<revision>`
/// and `trees/<commit>.json` written as huggingface_hub writes them.
public final class SnapshotDownloader: Sendable {
    public let environment: HubEnvironment
    /// Files downloaded at once (huggingface_hub's `max_workers` default is 8).
    public let parallelism: Int

    /// A downloader for `environment`, fetching up to `parallelism` files at once.
    public init(environment: HubEnvironment, parallelism: Int = 8) {
        self.environment = environment
        self.parallelism = max(1, parallelism)
    }

    /// Where a pull stands; sent after every chunk.
    public struct Progress: Sendable {
        public var totalBytes: Int64
        public var doneBytes: Int64
        public var totalFiles: Int
        public var doneFiles: Int
        /// The file that just finished, when one did.
        public var finished: String?
    }

    /// What a pull left in the cache.
    public struct Result: Sendable {
        /// `<cache>/models--org--name/snapshots/<commit>`.
        public var snapshot: String
        public var commit: String
        public var files: Int
        /// Bytes fetched over the network in this run (resumed parts not counted).
        public var downloadedBytes: Int64
    }

    /// Pulls `revision` of `repo`. Offline (`HF_HUB_OFFLINE`), answers from the cache or fails.
    public func pull(repo: RepositoryID, revision: String = "main", include: [String] = [], exclude: [String] = [],
                     progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> Result {
        guard !revision.isEmpty, !revision.contains(".."), !revision.hasPrefix("/"),
              revision.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value != 127 })
        else { throw HubError.invalidRevision(revision) }
        let cache = HubCache(root: environment.cacheDirectory, repo: repo)
        if environment.offline {
            guard let snapshot = try cache.completeSnapshot(revision: revision), let commit = cache.commit(for: revision)
            else { throw HubError.offlineNotCached(repo: repo.value, revision: revision, cache: cache.root) }
            return Result(snapshot: snapshot, commit: commit, files: 0, downloadedBytes: 0)
        }
        let client = HubClient(environment: environment)
        do {
            let filter = FileFilter(include: include, exclude: exclude)
            let result = try await pull(cache: cache, client: client, revision: revision, filter: filter,
                                        progress: progress)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    private func pull(cache: HubCache, client: HubClient, revision: String, filter: FileFilter,
                      progress: @escaping @Sendable (Progress) -> Void) async throws -> Result {
        let info = try await client.repositoryInfo(repo: cache.repo, revision: revision)
        let commit = info.commit
        try FileOps.createDirectory(cache.root)
        cache.tagCacheDirectory()
        try cache.writeRef(revision, commit: commit)
        if info.files.allSatisfy({ $0.size != nil && $0.blobID != nil }) {
            let listing = TreeListing(files: Dictionary(uniqueKeysWithValues: info.files.map {
                ($0.path, TreeListing.Entry(size: $0.size ?? 0, blobID: $0.blobID ?? "", lfsSHA256: $0.lfsSHA256,
                                            lfsSize: $0.lfsSize))
            }))
            if TreeListing.read(path: cache.tree(commit)) != listing { try listing.write(path: cache.tree(commit)) }
        }
        let files = info.files.filter { filter.accepts($0.path) }
        try checkSpace(cache: cache, files: files)

        let total = files.reduce(Int64(0)) { $0.saturatingAdd($1.lfsSize ?? $1.size ?? 0) }
        let state = NIOLockedValueBox(Progress(totalBytes: total, doneBytes: 0, totalFiles: files.count,
                                               doneFiles: 0, finished: nil))
        let fetched = NIOLockedValueBox(Int64(0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = files[...]
            func startNext() {
                guard let file = pending.popFirst() else { return }
                group.addTask {
                    let bytes = try await self.download(file, commit: commit, cache: cache, client: client) { delta in
                        let snapshot = state.withLockedValue { value -> Progress in
                            value.doneBytes = value.doneBytes.saturatingAdd(delta)
                            value.finished = nil
                            return value
                        }
                        progress(snapshot)
                    }
                    fetched.withLockedValue { $0 = $0.saturatingAdd(bytes) }
                    let snapshot = state.withLockedValue { value -> Progress in
                        value.doneFiles += 1
                        value.finished = file.path
                        return value
                    }
                    progress(snapshot)
                }
            }
            for _ in 0..<parallelism { startNext() }
            while try await group.next() != nil { startNext() }
        }
        return Result(snapshot: cache.snapshot(commit), commit: commit, files: files.count,
                      downloadedBytes: fetched.withLockedValue { $0 })
    }

    /// One file: metadata, the blob (skipped when already cached), then the snapshot link.
    private func download(_ file: HubClient.RemoteFile, commit: String, cache: HubCache, client: HubClient,
                          progress: @escaping @Sendable (Int64) -> Void) async throws -> Int64 {
        let metadata = try await client.metadata(repo: cache.repo, revision: commit, file: file.path)
        if let served = metadata.commit, served != commit {
            throw HubError.protocolViolation(url: metadata.location,
                                             detail: "\(file.path) served from commit \(served), expected \(commit)")
        }
        if let listed = file.lfsSize ?? (file.lfsSHA256 == nil ? file.size : nil), listed != metadata.size {
            throw HubError.protocolViolation(url: metadata.location,
                                             detail: "\(file.path): listed as \(listed) bytes, served as \(metadata.size)")
        }
        let bytes: Int64
        if FileOps.size(cache.blob(metadata.etag)) == metadata.size {
            progress(metadata.size)
            bytes = 0
        } else {
            bytes = try await BlobDownload(client: client, cache: cache, file: file.path, metadata: metadata,
                                           listedSHA256: file.lfsSHA256, progress: progress).run()
        }
        try cache.link(file: file.path, commit: commit, etag: metadata.etag)
        return bytes
    }

    /// Refuses to start when the file system cannot hold what is left (huggingface_hub only warns).
    private func checkSpace(cache: HubCache, files: [HubClient.RemoteFile]) throws {
        var needed: Int64 = 0
        for file in files {
            let size = file.lfsSize ?? file.size ?? 0
            let etag = file.lfsSHA256?.lowercased() ?? file.blobID ?? ""
            guard !CommitHash.isValidEtag(etag) || FileOps.size(cache.blob(etag)) != size else { continue }
            let partial = CommitHash.isValidEtag(etag) ? FileOps.size(cache.incomplete(etag)) ?? 0 : 0
            needed = needed.saturatingAdd(max(0, size - min(max(partial, 0), size)))
        }
        guard let available = FileOps.availableBytes(cache.root), needed > available else { return }
        throw HubError.insufficientSpace(path: cache.root, needed: needed, available: available)
    }
}

/// huggingface_hub's `filter_repo_objects`: `fnmatch` patterns (a `*` crosses folders; a pattern
/// ending in `/` means everything under that folder); no include pattern means every file.
struct FileFilter: Sendable {
    var include: [String]
    var exclude: [String]

    static func matches(_ path: String, _ pattern: String) -> Bool {
        let pattern = pattern.hasSuffix("/") ? pattern + "*" : pattern
        return fnmatch(pattern, path, 0) == 0
    }

    func accepts(_ path: String) -> Bool {
        (include.isEmpty || include.contains { Self.matches(path, $0) }) && !exclude.contains { Self.matches(path, $0) }
    }
}

extension Int64 {
    /// Sizes come from the server: sums saturate instead of trapping.
    func saturatingAdd(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}
