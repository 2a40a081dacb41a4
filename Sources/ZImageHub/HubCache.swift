import Foundation

/// huggingface_hub's cache layout for one model repository, so that both tools share one cache:
///
/// ```
/// <cache>/CACHEDIR.TAG
/// <cache>/.locks/models--org--name/<etag>.lock
/// <cache>/models--org--name/blobs/<etag>                 (sha256 for LFS files, git sha1 otherwise)
/// <cache>/models--org--name/blobs/<etag>.incomplete      (a download in progress; resumed with Range)
/// <cache>/models--org--name/refs/<revision>              (40-hex commit, no newline)
/// <cache>/models--org--name/snapshots/<commit>/<path>    → ../../blobs/<etag> (one more ../ per folder)
/// <cache>/models--org--name/trees/<commit>.json          (the file listing, huggingface_hub 2.x)
/// ```
///
/// Only complete, verified blobs are ever linked into `snapshots/`.
public struct HubCache: Sendable {
    /// The hub cache folder (`HF_HUB_CACHE`).
    public let root: String
    public let repo: RepositoryID

    /// The layout of `repo` under `root`; nothing is read or written yet.
    public init(root: String, repo: RepositoryID) {
        self.root = root
        self.repo = repo
    }

    /// `models--org--name`.
    public var folderName: String { "models--" + repo.value.replacingOccurrences(of: "/", with: "--") }
    /// Paths of the repository folder, a blob, its partial download, its lock, a ref, a snapshot and a listing.
    public var storage: String { root + "/" + folderName }
    public func blob(_ etag: String) -> String { storage + "/blobs/" + etag }
    public func incomplete(_ etag: String) -> String { blob(etag) + ".incomplete" }
    public func lock(_ etag: String) -> String { root + "/.locks/" + folderName + "/" + etag + ".lock" }
    public func ref(_ revision: String) -> String { storage + "/refs/" + revision }
    public func snapshot(_ commit: String) -> String { storage + "/snapshots/" + commit }
    public func tree(_ commit: String) -> String { storage + "/trees/" + commit + ".json" }

    /// The commit a revision names in the cache: itself when it is a 40-hex commit, else `refs/<revision>`.
    public func commit(for revision: String) -> String? {
        if CommitHash.isValid(revision) { return revision }
        guard let text = try? String(contentsOfFile: ref(revision), encoding: .utf8) else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return CommitHash.isValid(commit) ? commit : nil
    }

    /// The snapshot folder of `revision`, when the cache holds it completely (every file of the
    /// cached listing present, as huggingface_hub's `local_files_only` check does).
    public func completeSnapshot(revision: String) throws -> String? {
        guard let commit = commit(for: revision) else { return nil }
        let folder = snapshot(commit)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            return nil
        }
        if let listing = TreeListing.read(path: tree(commit)) {
            let missing = listing.files.keys.sorted().filter { !FileManager.default.fileExists(atPath: folder + "/" + $0) }
            guard missing.isEmpty else {
                throw HubError.incompleteSnapshot(repo: repo.value, revision: revision, missing: missing)
            }
        }
        return folder
    }

    /// Records `revision → commit` (atomically, only when it changed).
    public func writeRef(_ revision: String, commit: String) throws {
        guard revision != commit else { return }
        let path = ref(revision)
        if (try? String(contentsOfFile: path, encoding: .utf8)) == commit { return }
        try FileOps.writeAtomically(Data(commit.utf8), to: path)
    }

    /// Links `snapshots/<commit>/<file>` to the blob with a relative symlink, replacing what was there.
    public func link(file: String, commit: String, etag: String) throws {
        let pointer = snapshot(commit) + "/" + file
        let depth = file.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth + 2) + "blobs/" + etag
        try FileOps.createDirectory((pointer as NSString).deletingLastPathComponent)
        if let existing = try? FileManager.default.destinationOfSymbolicLink(atPath: pointer), existing == target {
            return
        }
        let staging = pointer + ".\(UUID().uuidString.prefix(8)).tmp"
        guard symlink(target, staging) == 0 else { throw FileOps.error(staging, errno) }
        guard rename(staging, pointer) == 0 else {
            let code = errno
            unlink(staging)
            throw FileOps.error(pointer, code)
        }
    }

    /// Writes the cache-directory tag huggingface_hub writes, if absent.
    public func tagCacheDirectory() {
        let path = root + "/CACHEDIR.TAG"
        guard !FileManager.default.fileExists(atPath: path) else { return }
        let text = "Signature: 8a477f597d28d172789f06886806bc55\n"
            + "# This file is a cache directory tag created by huggingface_hub.\n"
            + "# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n"
        try? FileOps.writeAtomically(Data(text.utf8), to: path)
    }
}

/// A repository id: `org/name` or `name`, with the Hub's allowed characters.
public struct RepositoryID: Sendable, Equatable, CustomStringConvertible {
    /// The id as given (`org/name`).
    public let value: String

    /// Validates as huggingface_hub's `validate_repo_id` does (letters, digits, `-_.`, one `/` at
    /// most, no `--` or `..`, no leading or trailing `-`/`.`, at most 96 characters).
    public init(_ value: String) throws {
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        guard (1...2).contains(parts.count), value.count <= 96, !value.contains("--"), !value.contains(".."),
              parts.allSatisfy({ part in
                  !part.isEmpty && part.allSatisfy { allowed.contains($0) }
                      && !part.hasPrefix("-") && !part.hasPrefix(".") && !part.hasSuffix("-") && !part.hasSuffix(".")
              })
        else { throw HubError.invalidRepository(value) }
        self.value = value
    }

    /// Whether `text` reads as a repository id rather than a path (`org/name`, not existing on disk).
    public static func looksLikeRepository(_ text: String) -> Bool {
        text.split(separator: "/", omittingEmptySubsequences: false).count == 2 && (try? RepositoryID(text)) != nil
    }

    public var description: String { value }
}

/// A git commit id: 40 lowercase hexadecimal digits.
public enum CommitHash {
    /// Whether `text` is a full commit id.
    public static func isValid(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// A blob's etag as a file name: a git sha1 (40 hex) or a sha256 (64 hex).
    public static func isValidEtag(_ text: String) -> Bool {
        (text.utf8.count == 40 || text.utf8.count == 64)
            && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

/// A path inside a repository as the Hub lists it, refused when it could leave the snapshot folder.
enum RepoPath {
    static func isSafe(_ path: String) -> Bool {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\\"), !path.contains("\0") else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
            !$0.isEmpty && $0 != "." && $0 != ".."
        }
    }
}
