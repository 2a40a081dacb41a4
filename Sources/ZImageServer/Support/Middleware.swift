import Foundation
import GRDB
import Hummingbird
import Logging
import ZImagePipeline

/// The request context: a 1 MiB body limit (prompts are small; nothing is uploaded).
public struct ZImageRequestContext: RequestContext {
    /// Hummingbird's per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// A context for a request arriving on `source`'s channel.
    public init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
    /// The largest request body read: 1 MiB.
    public var maxUploadSize: Int { 1 << 20 }
}

/// Every error leaves as JSON: our `APIError`s as they are (a 5xx one with its message replaced),
/// Hummingbird's `HTTPError`s with their status, a server that ran out of descriptors, disk or
/// database access as 503, anything else as a 500. A 5xx body names no internals: it says what
/// happened in general and gives the request id; the log has the detail under that id.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError where error.status.code < 500 {
            throw error
        } catch let error as HTTPError where error.status.code < 500 {
            let code = error.status == .notFound ? "not_found" : "http_error"
            throw APIError(error.status, code: code, message: error.body ?? error.status.reasonPhrase)
        } catch {
            let id = context.id
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))",
                                                              "path": "\(request.uri.path)", "request_id": "\(id)"])
            if ResourceExhaustion.matches(error) {
                var refusal = APIError(.serviceUnavailable, code: "unavailable",
                                       message: "the server is short of resources right now; try again shortly (request \(id))")
                refusal.headers[.retryAfter] = "5"
                throw refusal
            }
            let code = (error as? APIError)?.code ?? "internal_error"
            throw APIError(.internalServerError, code: code, message: "internal error (request \(id); details are in the server log)")
        }
    }
}

/// Errors that mean the machine is out of something for now (descriptors, disk, database access),
/// answered with 503 instead of 500.
enum ResourceExhaustion {
    static func matches(_ error: any Error) -> Bool {
        if let database = error as? DatabaseError {
            return [.SQLITE_CANTOPEN, .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_IOERR, .SQLITE_FULL, .SQLITE_NOMEM]
                .contains(database.resultCode)
        }
        let codes: Set<Int32> = [EMFILE, ENFILE, ENOSPC, ENOMEM, EAGAIN]
        if let png = error as? PNGError, case .fileWriteFailed(_, let reason) = png {
            return codes.contains { reason.hasSuffix(String(cString: strerror($0))) }
        }
        if let posix = error as? POSIXError { return codes.contains(posix.code.rawValue) }
        let nsError = error as NSError
        if nsError.domain == NSPOSIXErrorDomain { return codes.contains(Int32(nsError.code)) }
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return codes.contains(Int32(underlying.code))
        }
        return false
    }
}

/// With an API key, every request needs it: `Authorization: Bearer KEY`, or HTTP Basic with the
/// key as password (A1111 clients and browsers); scheme names in any case (RFC 7235). Answers
/// 401 with `WWW-Authenticate: Basic`.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], authorized(header) else {
            var error = APIError(.unauthorized, code: "unauthorized",
                                 message: "this server needs an API key: Authorization: Bearer KEY, or HTTP Basic with the key as password")
            error.headers[.wwwAuthenticate] = #"Basic realm="zimage", charset="UTF-8""#
            throw error
        }
        return try await next(request, context)
    }

    func authorized(_ header: String) -> Bool {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { return false }
        let scheme = parts[0].lowercased(), credentials = parts[1].trimmingCharacters(in: .whitespaces)
        if scheme == "bearer" { return constantTimeEqual(credentials, key) }
        if scheme == "basic", let data = Data(base64Encoded: credentials),
           let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":") {
            return constantTimeEqual(String(text[text.index(after: colon)...]), key)
        }
        return false
    }

    func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return difference == 0
    }
}

/// Counts requests for /metrics.
struct RequestCountMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        metrics.requests.increment()
        return try await next(request, context)
    }
}
