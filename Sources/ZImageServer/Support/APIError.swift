import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error answered as JSON: `{"error": {"code", "field", "message"}}` with an HTTP status.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    /// The HTTP status answered.
    public var status: HTTPResponse.Status
    /// A stable machine-readable code (`invalid_parameter`, `queue_full`, …).
    public var code: String
    /// The request field at fault, spelled as the caller spelled it.
    public var field: String?
    /// A sentence for people.
    public var message: String
    /// Extra response headers (`Retry-After`, `WWW-Authenticate`).
    public var headers: HTTPFields = [:]

    /// The error answered with `status`, `code`, the field at fault and `message`.
    public init(_ status: HTTPResponse.Status, code: String, field: String? = nil, message: String) {
        self.status = status
        self.code = code
        self.field = field
        self.message = message
    }

    /// `STATUS code: message`, for logs.
    public var description: String { "\(status.code) \(code): \(message)" }

    /// The JSON error response, with `headers`.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        let body: [String: Any] = ["error": ["code": code, "field": field ?? NSNull(), "message": message] as [String: Any]]
        let data = SafeJSON.data(body)
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func badRequest(_ field: String?, _ message: String) -> APIError {
        APIError(.badRequest, code: "invalid_request", field: field, message: message)
    }
    /// An id from a request as an error message may show it: ids this server makes are UUIDs, so
    /// anything longer or with other characters is not echoed back.
    static func shown(_ id: String) -> String {
        id.utf8.count <= 64 && id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d })
            ? id : "(an id this server never made)"
    }

    static func notFound(_ what: String) -> APIError { APIError(.notFound, code: "not_found", message: "\(what) not found") }
}
