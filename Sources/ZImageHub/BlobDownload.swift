import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore

/// Downloads one blob into `blobs/<etag>.incomplete`, resuming with `Range` from whatever an
/// earlier process left there, verifies it (sha256 for LFS files, the git blob sha1 otherwise;
/// huggingface_hub checks the size only) and renames it to `blobs/<etag>`. A corrupted transfer
/// removes the partial file; an interrupted one keeps it for the next run.
struct BlobDownload {
    let client: HubClient
    let cache: HubCache
    let file: String
    let metadata: HubClient.FileMetadata
    /// The content sha256 the listing promises, if it lists one (must equal an LFS etag).
    let listedSHA256: String?
    /// Called with the number of new bytes as they arrive (negative when a partial file is dropped).
    let progress: @Sendable (Int64) -> Void

    /// Runs the download under the blob's lock; returns the number of bytes fetched.
    func run() async throws -> Int64 {
        let etag = metadata.etag
        if let listed = listedSHA256?.lowercased(), etag.utf8.count == 64, listed != etag {
            throw HubError.protocolViolation(url: metadata.location,
                                             detail: "\(file): the listing's sha256 \(listed) differs from its ETag \(etag)")
        }
        try FileOps.createDirectory(cache.storage + "/blobs")
        let lock = try await FileLock(path: cache.lock(etag), timeout: 30)
        defer { withExtendedLifetime(lock) {} }
        let blob = cache.blob(etag)
        if FileOps.size(blob) == metadata.size { return 0 }
        let partial = cache.incomplete(etag)
        var have = FileOps.size(partial) ?? 0
        if have > metadata.size {
            try restart(partial, had: have)
            have = 0
        }
        var hasher = ContentHasher(etag: etag, size: metadata.size)
        if have > 0 { try hasher.feed(file: partial, count: have) }
        progress(have)
        // A dropped connection is retried (three times, 1 s, 2 s, 4 s apart) from where it stopped, as
        // huggingface_hub's http_get does; the bytes written so far are exactly the bytes hashed.
        if FileOps.size(partial) == nil { try AppendFile(path: partial).close() }   // an empty file has no bytes to append
        var fetched: Int64 = 0, attempt = 0
        while let offset = FileOps.size(partial) ?? Optional(0), offset < metadata.size {
            do {
                fetched = fetched.saturatingAdd(try await fetch(into: partial, from: offset, hasher: &hasher))
                break
            } catch HubError.network(_, _) where attempt < 3 && !Task.isCancelled {
                attempt += 1
                try await Task.sleep(nanoseconds: 500_000_000 << UInt64(attempt))
            }
        }
        let size = FileOps.size(partial) ?? 0
        guard size == metadata.size else {
            throw HubError.sizeMismatch(file: file, expected: metadata.size, found: size)
        }
        let digest = hasher.finish()
        guard digest.value == etag else {
            unlink(partial)
            progress(-metadata.size)
            throw HubError.checksumMismatch(file: file, algorithm: digest.algorithm, expected: etag, found: digest.value)
        }
        guard rename(partial, blob) == 0 else { throw FileOps.error(blob, errno) }
        return fetched
    }

    private func restart(_ partial: String, had: Int64) throws {
        progress(-had)
        guard truncate(partial, 0) == 0 || errno == ENOENT else { throw FileOps.error(partial, errno) }
    }

    /// GETs from `offset`, following redirects (the token is dropped once the host changes) and
    /// starting over when the server ignores the range.
    private func fetch(into partial: String, from offset: Int64, hasher: inout ContentHasher) async throws -> Int64 {
        var url = metadata.location
        var token = client.environment.token
        var offset = offset
        for _ in 0..<10 {
            let response = try await client.send(url: url, method: .GET, token: token, range: offset)
            let status = response.status.code
            if (300..<400).contains(status), let location = response.headers.first(name: "Location") {
                let next = location.hasPrefix("/") && !location.hasPrefix("//")
                    ? HubClient.origin(of: url) + location : location
                if HubClient.host(of: next) != HubClient.host(of: url) { token = nil }
                url = next
                continue
            }
            if status == 416, offset > 0 {   // the partial file does not fit this blob: start over
                try restart(partial, had: offset)
                offset = 0
                hasher = ContentHasher(etag: metadata.etag, size: metadata.size)
                continue
            }
            guard status == 200 || status == 206 else {
                throw try await client.failure(response, url: url, repo: cache.repo, revision: metadata.commit ?? "",
                                               file: file)
            }
            if offset > 0 && status == 200 {   // range ignored: the body is the whole file
                try restart(partial, had: offset)
                offset = 0
                hasher = ContentHasher(etag: metadata.etag, size: metadata.size)
            } else if status == 206 {
                let range = response.headers.first(name: "Content-Range") ?? ""
                guard range.hasPrefix("bytes \(offset)-") else {
                    throw HubError.protocolViolation(url: url, detail: "Content-Range '\(range)' for a request from byte \(offset)")
                }
            }
            return try await stream(response, url: url, into: partial, from: offset, hasher: &hasher)
        }
        throw HubError.protocolViolation(url: url, detail: "too many redirects")
    }

    private func stream(_ response: HTTPClientResponse, url: String, into partial: String, from offset: Int64,
                        hasher: inout ContentHasher) async throws -> Int64 {
        let output = try AppendFile(path: partial)
        var written = offset, fetched: Int64 = 0
        do {
            for try await chunk in response.body {
                let count = Int64(chunk.readableBytes)
                guard count <= metadata.size - written else {
                    throw HubError.sizeMismatch(file: file, expected: metadata.size, found: written.saturatingAdd(count))
                }
                try chunk.withUnsafeReadableBytes { bytes in
                    try output.write(bytes)
                    hasher.update(bytes)
                }
                written += count
                fetched = fetched.saturatingAdd(count)
                progress(count)
            }
        } catch let error as HubError {
            try? output.close()
            throw error
        } catch {
            try? output.close()
            throw HubError.network(url: url, detail: "transfer of \(file) interrupted at byte \(written): "
                + HubClient.describe(error))
        }
        try output.close()
        return fetched
    }
}

/// The hash a blob's etag is: sha256 of the content (LFS, 64 hex) or git's blob sha1
/// (`sha1("blob <size>\0" + content)`, 40 hex).
struct ContentHasher {
    private var sha256: SHA256?
    private var sha1: Insecure.SHA1?

    init(etag: String, size: Int64) {
        if etag.utf8.count == 64 {
            sha256 = SHA256()
        } else {
            var sha1 = Insecure.SHA1()
            sha1.update(data: Data("blob \(size)\0".utf8))
            self.sha1 = sha1
        }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        sha256?.update(bufferPointer: bytes)
        sha1?.update(bufferPointer: bytes)
    }

    /// Hashes the first `count` bytes of `file` (a partial download being resumed).
    mutating func feed(file: String, count: Int64) throws {
        guard let handle = FileHandle(forReadingAtPath: file) else {
            throw HubError.fileSystem(path: file, detail: "cannot be read")
        }
        defer { try? handle.close() }
        var left = count
        while left > 0 {
            let data = handle.readData(ofLength: Int(min(left, 8 << 20)))
            guard !data.isEmpty else { throw HubError.fileSystem(path: file, detail: "shorter than expected") }
            data.withUnsafeBytes { update($0) }
            left -= Int64(data.count)
        }
    }

    func finish() -> (algorithm: String, value: String) {
        if let sha256 { return ("sha256", sha256.finalize().map { String(format: "%02x", $0) }.joined()) }
        if let sha1 { return ("git-sha1", sha1.finalize().map { String(format: "%02x", $0) }.joined()) }
        return ("none", "")
    }
}
