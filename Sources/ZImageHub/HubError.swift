import Foundation

/// Errors from talking to the Hugging Face Hub and from writing its cache. Each names the
/// repository, file or path at fault and says what to do where there is something to do.
public enum HubError: Error, Equatable, CustomStringConvertible {
    /// Not `org/name` (or `name`) with the Hub's allowed characters.
    case invalidRepository(String)
    /// A revision that cannot name a branch, tag or commit (empty, `..`, control characters).
    case invalidRevision(String)
    /// The Hub answered 404 (or 401 with `X-Error-Code: RepoNotFound`) for the repository.
    case repositoryNotFound(repo: String, tokenSent: Bool)
    /// The repository exists but not this revision.
    case revisionNotFound(repo: String, revision: String)
    /// 404 for one file.
    case fileNotFound(repo: String, revision: String, file: String)
    /// 401/403: the token was refused or the repository is gated.
    case unauthorized(repo: String, status: Int, tokenSent: Bool, message: String?)
    /// Any other unexpected status.
    case httpStatus(url: String, status: Int, message: String?)
    /// Transport failure (connection refused, reset, timeout…).
    case network(url: String, detail: String)
    /// The server's answer is not what the protocol promises (missing header, bad JSON, unsafe name).
    case protocolViolation(url: String, detail: String)
    /// The downloaded bytes do not hash to what the Hub says they are; the partial file was removed.
    case checksumMismatch(file: String, algorithm: String, expected: String, found: String)
    /// The transfer ended with another size than announced.
    case sizeMismatch(file: String, expected: Int64, found: Int64)
    /// Not enough free space for what is left to download.
    case insufficientSpace(path: String, needed: Int64, available: Int64)
    /// ENOSPC/EDQUOT while writing.
    case diskFull(path: String)
    /// Any other file-system failure.
    case fileSystem(path: String, detail: String)
    /// Offline (`HF_HUB_OFFLINE`) and the snapshot is not in the cache.
    case offlineNotCached(repo: String, revision: String, cache: String)
    /// The cache holds part of the snapshot only.
    case incompleteSnapshot(repo: String, revision: String, missing: [String])
    /// Another process holds the lock of a file being downloaded.
    case locked(path: String)

    public var description: String {
        switch self {
        case .invalidRepository(let repo):
            "'\(repo)' is not a Hugging Face repository id (expected ORG/NAME, e.g. Tongyi-MAI/Z-Image-Turbo)"
        case .invalidRevision(let revision): "'\(revision)' is not a valid revision (branch, tag or commit)"
        case .repositoryNotFound(let repo, let tokenSent):
            "repository \(repo) was not found on the Hub" + (tokenSent ? " (or the token cannot see it)"
                : "; if it is private or gated, set HF_TOKEN")
        case .revisionNotFound(let repo, let revision): "repository \(repo) has no revision '\(revision)'"
        case .fileNotFound(let repo, let revision, let file): "\(repo)@\(revision): \(file) was not found (404)"
        case .unauthorized(let repo, let status, let tokenSent, let message):
            "\(repo): access refused (HTTP \(status))" + (tokenSent
                ? ": the token in HF_TOKEN (or $HF_HOME/token) is invalid or has no access to this repository"
                : ": the repository needs a token; set HF_TOKEN") + (message.map { " — server says: \($0)" } ?? "")
        case .httpStatus(let url, let status, let message):
            "\(url): HTTP \(status)" + (message.map { ": \($0)" } ?? "")
        case .network(let url, let detail): "\(url): \(detail)"
        case .protocolViolation(let url, let detail): "\(url): unexpected answer from the Hub: \(detail)"
        case .checksumMismatch(let file, let algorithm, let expected, let found):
            "\(file): downloaded bytes are corrupted (\(algorithm) \(found), expected \(expected)); "
                + "the partial file was removed, run the command again"
        case .sizeMismatch(let file, let expected, let found):
            "\(file): received \(found) bytes, expected \(expected)"
        case .insufficientSpace(let path, let needed, let available):
            "\(path): not enough free space: \(DownloadSize.format(needed)) still to download, "
                + "\(DownloadSize.format(available)) available"
        case .diskFull(let path):
            "\(path): the disk is full; the partial download is kept and resumes when space is freed"
        case .fileSystem(let path, let detail): "\(path): \(detail)"
        case .offlineNotCached(let repo, let revision, let cache):
            "\(repo)@\(revision) is not in the Hugging Face cache (\(cache)) and HF_HUB_OFFLINE is set"
        case .incompleteSnapshot(let repo, let revision, let missing):
            "\(repo)@\(revision) is only partly downloaded (\(missing.count) file(s) missing: "
                + missing.prefix(3).joined(separator: ", ") + (missing.count > 3 ? ", …" : "")
                + "); run `zimage pull \(repo)`"
        case .locked(let path): "\(path) is being downloaded by another process"
        }
    }
}

/// Human-readable byte counts (1000-based, as the Hub shows sizes).
public enum DownloadSize {
    /// "1.5 GB".
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes), unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}
