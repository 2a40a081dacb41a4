import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The Hub's HTTP protocol as huggingface_hub speaks it: repository info
/// (`/api/models/{repo}/revision/{rev}?blobs=true`), file metadata by a HEAD of
/// `/{repo}/resolve/{rev}/{file}` (`X-Repo-Commit`, `X-Linked-Etag` or `ETag`, `X-Linked-Size` or
/// `Content-Length`, following only relative redirects), and downloads that follow redirects to
/// other hosts without the token. Errors map as `hf_raise_for_status` maps them (`X-Error-Code`).
public final class HubClient: Sendable {
    public let environment: HubEnvironment
    let http: HTTPClient

    /// A client for `environment`'s endpoint and token (redirects handled here, not by the HTTP client).
    public init(environment: HubEnvironment) {
        self.environment = environment
        let configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10), read: .seconds(60)),
            decompression: .disabled)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections; call once when done.
    public func shutdown() async {
        try? await http.shutdown()
    }

    /// One file of a repository listing.
    public struct RemoteFile: Sendable, Equatable {
        public var path: String
        public var size: Int64?
        /// Git blob id (sha1 of the file for plain files, of the pointer for LFS files).
        public var blobID: String?
        /// sha256 and size of an LFS file's content.
        public var lfsSHA256: String?
        public var lfsSize: Int64?
    }

    /// A revision's commit and its files.
    public struct RepositoryInfo: Sendable {
        public var commit: String
        public var files: [RemoteFile]
    }

    /// What a HEAD of a file's resolve URL says.
    public struct FileMetadata: Sendable, Equatable {
        public var commit: String?
        public var etag: String
        public var size: Int64
        /// Where to GET the bytes (the CDN after an absolute redirect, else the resolve URL).
        public var location: String
    }

    static func quote(_ text: String, keepSlash: Bool) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")
        if keepSlash { allowed.insert("/") }
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    func resolveURL(repo: RepositoryID, revision: String, file: String) -> String {
        environment.endpoint + "/" + repo.value + "/resolve/" + Self.quote(revision, keepSlash: false) + "/"
            + Self.quote(file, keepSlash: true)
    }

    /// `GET /api/models/{repo}/revision/{revision}?blobs=true`: the commit and every file.
    public func repositoryInfo(repo: RepositoryID, revision: String) async throws -> RepositoryInfo {
        let url = environment.endpoint + "/api/models/" + repo.value + "/revision/"
            + Self.quote(revision, keepSlash: false) + "?blobs=true"
        let response = try await send(url: url, method: .GET, token: environment.token)
        guard response.status == .ok else {
            throw try await failure(response, url: url, repo: repo, revision: revision, file: nil)
        }
        let body = try await collect(response, url: url, limit: 64 << 20)
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let commit = object["sha"] as? String, CommitHash.isValid(commit),
              let siblings = object["siblings"] as? [[String: Any]]
        else { throw HubError.protocolViolation(url: url, detail: "no 'sha' commit and 'siblings' list") }
        var files: [RemoteFile] = []
        for sibling in siblings {
            guard let path = sibling["rfilename"] as? String, RepoPath.isSafe(path) else {
                throw HubError.protocolViolation(url: url, detail: "unsafe file name \(sibling["rfilename"] ?? "nil")")
            }
            let lfs = sibling["lfs"] as? [String: Any]
            files.append(RemoteFile(path: path, size: (sibling["size"] as? NSNumber)?.int64Value,
                                    blobID: sibling["blobId"] as? String, lfsSHA256: lfs?["sha256"] as? String,
                                    lfsSize: (lfs?["size"] as? NSNumber)?.int64Value))
        }
        return RepositoryInfo(commit: commit, files: files)
    }

    /// HEAD of the file's resolve URL (relative redirects followed, absolute ones reported as the location).
    public func metadata(repo: RepositoryID, revision: String, file: String) async throws -> FileMetadata {
        var url = resolveURL(repo: repo, revision: revision, file: file)
        for _ in 0..<10 {
            let response = try await send(url: url, method: .HEAD, token: environment.token)
            let headers = response.headers
            let status = response.status.code
            let location = headers.first(name: "Location")
            if (300..<400).contains(status), let location, location.hasPrefix("/"), !location.hasPrefix("//") {
                url = Self.origin(of: url) + location
                continue
            }
            guard (200..<400).contains(status) else {
                throw try await failure(response, url: url, repo: repo, revision: revision, file: file)
            }
            guard let rawEtag = headers.first(name: "X-Linked-Etag") ?? headers.first(name: "ETag") else {
                throw HubError.protocolViolation(url: url, detail: "no ETag")
            }
            let etag = Self.normalizeEtag(rawEtag)
            guard CommitHash.isValidEtag(etag) else {
                throw HubError.protocolViolation(url: url, detail: "ETag '\(rawEtag)' is neither a sha1 nor a sha256")
            }
            let sizeText = headers.first(name: "X-Linked-Size") ?? ((300..<400).contains(status) ? nil
                : headers.first(name: "Content-Length"))
            guard let sizeText, let size = Int64(sizeText), size >= 0 else {
                throw HubError.protocolViolation(url: url, detail: "no file size (X-Linked-Size or Content-Length)")
            }
            let commit = headers.first(name: "X-Repo-Commit")
            return FileMetadata(commit: commit, etag: etag, size: size,
                                location: (300..<400).contains(status) ? (location ?? url) : url)
        }
        throw HubError.protocolViolation(url: url, detail: "too many redirects")
    }

    /// huggingface_hub's `_normalize_etag`: strips `W/` and quotes.
    static func normalizeEtag(_ etag: String) -> String {
        var text = Substring(etag.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        return text.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    static func origin(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host
        else { return url }
        return scheme + "://" + host + (components.port.map { ":\($0)" } ?? "")
    }

    static func host(of url: String) -> String? {
        guard let components = URLComponents(string: url) else { return nil }
        return components.host.map { $0 + (components.port.map { ":\($0)" } ?? "") }
    }

    /// A request, with the token only for the Hub's own host.
    func send(url: String, method: HTTPMethod, token: String?, range: Int64? = nil) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: "zimage/0.1; hf_hub-compatible")
        request.headers.add(name: "Accept-Encoding", value: "identity")
        if let token, Self.host(of: url) == Self.host(of: environment.endpoint) {
            request.headers.add(name: "Authorization", value: "Bearer " + token)
        }
        if let range, range > 0 { request.headers.add(name: "Range", value: "bytes=\(range)-") }
        do {
            return try await http.execute(request, timeout: .hours(24))
        } catch {
            throw HubError.network(url: url, detail: Self.describe(error))
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError, error == .remoteConnectionClosed { return "the server closed the connection" }
        return "\(error)"
    }

    func collect(_ response: HTTPClientResponse, url: String, limit: Int) async throws -> Data {
        do {
            var buffer = try await response.body.collect(upTo: limit)
            return Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
        } catch {
            throw HubError.network(url: url, detail: Self.describe(error))
        }
    }

    /// The typed error for a failed response (`hf_raise_for_status`).
    func failure(_ response: HTTPClientResponse, url: String, repo: RepositoryID, revision: String,
                 file: String?) async throws -> HubError {
        let code = response.headers.first(name: "X-Error-Code")
        var message = response.headers.first(name: "X-Error-Message")
        if message == nil, let body = try? await response.body.collect(upTo: 1 << 16) {
            var body = body
            let text = body.readString(length: body.readableBytes) ?? ""
            if let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
                message = json["error"] as? String
            } else if !text.isEmpty {
                message = String(text.prefix(200))
            }
        }
        let status = Int(response.status.code)
        let tokenSent = environment.token != nil && Self.host(of: url) == Self.host(of: environment.endpoint)
        switch (code, status) {
        case ("RepoNotFound", _): return .repositoryNotFound(repo: repo.value, tokenSent: tokenSent)
        case ("RevisionNotFound", _): return .revisionNotFound(repo: repo.value, revision: revision)
        case ("EntryNotFound", _), (_, 404) where file != nil:
            return .fileNotFound(repo: repo.value, revision: revision, file: file ?? "")
        case ("GatedRepo", _), (_, 401), (_, 403):
            return .unauthorized(repo: repo.value, status: status, tokenSent: tokenSent, message: message)
        case (_, 404): return .repositoryNotFound(repo: repo.value, tokenSent: tokenSent)
        default: return .httpStatus(url: url, status: status, message: message)
        }
    }
}
