import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web UI's files: GET and HEAD of regular files inside one folder (`ContainedFolder`: no
/// symlink leads out), `/` and `/dir/` as their `index.html`, never a redirect (so `//host`
/// cannot become a protocol-relative `Location`), and single byte ranges (`bytes=a-b`, `a-`,
/// `-n`) answered with 206 or 416. Paths that are not files go on to the router.
struct StaticFilesMiddleware<Context: RequestContext>: RouterMiddleware {
    let folder: ContainedFolder

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get || request.method == .head,
              let relative = Self.relativePath(request.uri.path), let (path, size) = folder.file(relative),
              let data = FileManager.default.contents(atPath: path), data.count == size else {
            return try await next(request, context)
        }
        var headers: HTTPFields = [.contentType: Self.mediaType(of: path), .acceptRanges: "bytes", .cacheControl: "no-cache"]
        var status = HTTPResponse.Status.ok
        var bytes = data[...]
        if let header = request.headers[.range] {
            switch ByteRange.parse(header, size: size) {
            case .none: break
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(size)"
                var error = APIError(.rangeNotSatisfiable, code: "range_not_satisfiable",
                                     message: "the range \(header.prefix(100)) is outside the file's \(size) bytes")
                error.headers = headers
                error.headers[.contentType] = nil
                throw error
            case .range(let range):
                status = .partialContent
                headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)"
                bytes = data[data.startIndex + range.lowerBound..<data.startIndex + range.upperBound]
            }
        }
        headers[.contentLength] = String(bytes.count)
        let body = request.method == .head ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        return Response(status: status, headers: headers, body: body)
    }

    /// The path below the folder for a request path, or nil when it has empty, `.` or `..`
    /// components (`//x`, `/a//b`, `/../x`) or cannot be decoded.
    static func relativePath(_ rawPath: String) -> String? {
        guard let path = rawPath.removingPercentEncoding, path.hasPrefix("/") else { return nil }
        var components = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if components.last == "" { components[components.count - 1] = "index.html" }
        guard components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return nil }
        return components.joined(separator: "/")
    }

    static func mediaType(of path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "json": "application/json; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        case "txt": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }
}

/// One HTTP byte range (RFC 9110 §14.1), resolved against a file size.
enum ByteRange: Equatable {
    /// No usable Range header (absent, another unit, several ranges, bad syntax): send the whole file.
    case none
    /// A syntactically good range that no byte of the file satisfies (416).
    case unsatisfiable
    /// The bytes to send, half-open.
    case range(Range<Int>)

    static func parse(_ header: String, size: Int) -> ByteRange {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else { return .none }
        let spec = text.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .none }
        let first = spec[..<dash].trimmingCharacters(in: .whitespaces), last = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        let digits: (String) -> Bool = { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
        if first.isEmpty {
            // Suffix range: the last n bytes.
            guard digits(last) else { return .none }
            guard let count = Int(last) else { return size > 0 ? .range(0..<size) : .unsatisfiable }
            guard count > 0, size > 0 else { return .unsatisfiable }
            return .range(max(0, size - count)..<size)
        }
        guard digits(first) else { return .none }
        guard let start = Int(first), start < size else { return .unsatisfiable }
        if last.isEmpty { return .range(start..<size) }
        guard digits(last) else { return .none }
        let end = Int(last).map { min($0, size - 1) } ?? (size - 1)
        guard end >= start else { return .none }
        return .range(start..<(end + 1))
    }
}
