import Foundation

/// Small POSIX helpers with typed errors (ENOSPC/EDQUOT become `HubError.diskFull`).
enum FileOps {
    static func error(_ path: String, _ code: Int32) -> HubError {
        if code == ENOSPC || code == EDQUOT { return .diskFull(path: path) }
        return .fileSystem(path: path, detail: String(cString: strerror(code)))
    }

    static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw HubError.fileSystem(path: path, detail: (error as NSError).localizedDescription)
        }
    }

    /// Writes `data` to a temporary file beside `path`, then renames it over `path`.
    static func writeAtomically(_ data: Data, to path: String) throws {
        try createDirectory((path as NSString).deletingLastPathComponent)
        let staging = path + ".\(UUID().uuidString.prefix(8)).tmp"
        let file = try AppendFile(path: staging, truncate: true)
        do {
            try data.withUnsafeBytes { try file.write($0) }
            try file.close()
        } catch {
            unlink(staging)
            throw error
        }
        guard rename(staging, path) == 0 else {
            let code = errno
            unlink(staging)
            throw Self.error(path, code)
        }
    }

    /// Size of a regular file, or nil when there is none.
    static func size(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    /// Free bytes for an unprivileged writer on the file system holding `path`.
    static func availableBytes(_ path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let (product, overflow) = Int64(info.f_bavail).multipliedReportingOverflow(by: Int64(info.f_frsize))
        return overflow ? Int64.max : product
    }
}

/// A file opened for appending with plain `write(2)`: every byte written is in the kernel once
/// `write` returns, so a killed process leaves a partial file that a later run resumes.
final class AppendFile {
    let path: String
    private var descriptor: Int32

    init(path: String, truncate: Bool = false) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0o644)
        guard descriptor >= 0 else { throw FileOps.error(path, errno) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var base = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let written = Foundation.write(descriptor, base, left)
            if written < 0 {
                if errno == EINTR { continue }
                throw FileOps.error(path, errno)
            }
            left -= written
            base += written
        }
    }

    /// Flushes to disk and closes; errors (a full disk can surface here) are reported.
    func close() throws {
        guard descriptor >= 0 else { return }
        let fd = descriptor
        descriptor = -1
        if fsync(fd) != 0, errno != EINVAL {
            let code = errno
            Foundation.close(fd)
            throw FileOps.error(path, code)
        }
        guard Foundation.close(fd) == 0 else { throw FileOps.error(path, errno) }
    }

    deinit {
        if descriptor >= 0 { Foundation.close(descriptor) }
    }
}

/// An exclusive `flock(2)` on a lock file (what huggingface_hub's `filelock` takes on Unix).
final class FileLock {
    private let descriptor: Int32

    /// Waits up to `timeout` seconds for the lock.
    init(path: String, timeout: Double = 10) async throws {
        try FileOps.createDirectory((path as NSString).deletingLastPathComponent)
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileOps.error(path, errno) }
        let deadline = Date().addingTimeInterval(timeout)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, Date() < deadline else {
                Foundation.close(descriptor)
                throw HubError.locked(path: path)
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        Foundation.close(descriptor)
    }
}

/// `trees/<commit>.json`: huggingface_hub 2.x's cached file listing of one commit (format 1).
struct TreeListing: Equatable {
    struct Entry: Equatable {
        var size: Int64
        var blobID: String
        var lfsSHA256: String?
        var lfsSize: Int64?
    }

    var files: [String: Entry]

    static func read(path: String) -> TreeListing? {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              object["format_version"] as? Int == 1, let files = object["files"] as? [String: Any]
        else { return nil }
        var entries: [String: Entry] = [:]
        for (path, value) in files {
            guard let info = value as? [String: Any], let size = (info["size"] as? NSNumber)?.int64Value,
                  let blob = info["blob_id"] as? String else { return nil }
            entries[path] = Entry(size: size, blobID: blob, lfsSHA256: info["lfs_sha256"] as? String,
                                  lfsSize: (info["lfs_size"] as? NSNumber)?.int64Value)
        }
        return TreeListing(files: entries)
    }

    func write(path: String) throws {
        var files: [String: Any] = [:]
        for (name, entry) in self.files {
            var info: [String: Any] = ["size": entry.size, "blob_id": entry.blobID]
            if let sha = entry.lfsSHA256 {
                info["lfs_sha256"] = sha
                info["lfs_size"] = entry.lfsSize ?? entry.size
            }
            files[name] = info
        }
        let object: [String: Any] = ["format_version": 1, "files": files]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try FileOps.writeAtomically(data, to: path)
    }
}
