import Foundation

/// Reads files only from inside one folder: the real path (symlinks resolved) must lie in the
/// folder's real path, and it must be a regular file of bounded size. A symlink that points
/// out of the folder, a FIFO or a device is treated as missing.
struct ContainedFolder: Sendable {
    /// The folder's real path.
    let root: String
    /// Files larger than this are not served.
    let maxFileBytes: Int

    init?(_ path: String, maxFileBytes: Int = 64 << 20) {
        guard let real = Self.realPath(path) else { return nil }
        root = real
        self.maxFileBytes = maxFileBytes
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The real path of `relative` inside the folder, when it is a regular file there.
    func file(_ relative: String) -> (path: String, size: Int)? {
        guard !relative.utf8.contains(0), let real = Self.realPath(root + "/" + relative),
              real.hasPrefix(root + "/") else { return nil }
        var info = stat()
        guard stat(real, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) <= maxFileBytes else {
            return nil
        }
        return (real, Int(info.st_size))
    }

    /// The bytes of `relative`, when it is a regular file inside the folder.
    func contents(_ relative: String) -> Data? {
        guard let (path, _) = file(relative) else { return nil }
        return FileManager.default.contents(atPath: path)
    }
}
