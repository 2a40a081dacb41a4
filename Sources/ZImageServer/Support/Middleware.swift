import Foundation
import Hummingbird
import Logging

/// The request context: a 1 MiB body limit (prompts are small; nothing is uploaded).
public struct ZImageRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
    public var maxUploadSize: Int { 1 << 20 }
}

/// Every error leaves as JSON: our `APIError`s as they are, Hummingbird's `HTTPError`s with their
/// status, anything else as a 500 that names no internals. Nothing a client sends crashes the server.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found" : "http_error"
            throw APIError(error.status, code: code, message: error.body ?? error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw APIError(.internalServerError, code: "internal_error", message: "internal error: \(error)")
        }
    }
}

/// With an API key, every request needs it: `Authorization: Bearer KEY`, or HTTP Basic with the
/// key as password (A1111 clients and browsers). Answers 401 with `WWW-Authenticate: Basic`.
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
        if header.hasPrefix("Bearer ") { return constantTimeEqual(String(header.dropFirst(7)), key) }
        if header.hasPrefix("Basic "), let data = Data(base64Encoded: String(header.dropFirst(6))),
           let credentials = String(data: data, encoding: .utf8), let colon = credentials.firstIndex(of: ":") {
            return constantTimeEqual(String(credentials[credentials.index(after: colon)...]), key)
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
