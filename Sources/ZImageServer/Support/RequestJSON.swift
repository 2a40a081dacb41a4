import Foundation
import Hummingbird
import NIOCore

/// A JSON request body read leniently (unknown fields ignored) with typed getters whose errors
/// name the field.
struct RequestJSON {
    let object: [String: Any]

    enum BodyRead: Sendable { case complete(ByteBuffer), tooLarge }

    /// Reads the body (at most `maxUploadSize` bytes, within `ConnectionLimits.bodyTimeout`) as a JSON object.
    /// `limit` raises the body limit for the routes that take images.
    static func read(_ request: Request, context: some RequestContext, limit: Int? = nil) async throws -> RequestJSON {
        let data = try await body(request, limit: limit ?? context.maxUploadSize)
        if data.isEmpty { return RequestJSON(object: [:]) }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw APIError.badRequest(nil, "the body is not a JSON object")
        }
        return RequestJSON(object: object)
    }

    /// The raw body, at most `limit` bytes, within `ConnectionLimits.bodyTimeout` (408 / 413 otherwise).
    static func body(_ request: Request, limit: Int) async throws -> Data {
        let outcome = await Deadline.run(seconds: ConnectionLimits.bodyTimeout) { () -> BodyRead in
            do { return .complete(try await request.body.collect(upTo: limit)) } catch { return .tooLarge }
        }
        guard let outcome else {
            var error = APIError(.requestTimeout, code: "body_timeout",
                                 message: "the request body did not arrive within \(Int(ConnectionLimits.bodyTimeout)) s")
            error.headers[.connection] = "close"
            throw error
        }
        guard case .complete(let buffer) = outcome else {
            throw APIError(.contentTooLarge, code: "body_too_large",
                           message: "the request body is larger than \(limit / 1024) KiB")
        }
        return Data(buffer: buffer)
    }

    func has(_ key: String) -> Bool { object[key] != nil && !(object[key] is NSNull) }

    func string(_ key: String) throws -> String? {
        guard has(key) else { return nil }
        guard let value = object[key] as? String else { throw APIError.badRequest(key, "\(key) must be a string") }
        return value
    }

    /// An integer field, exact over the whole 64-bit range (JSON numbers beyond it, fractions and
    /// other types are refused naming the field).
    func int(_ key: String) throws -> Int? {
        guard has(key) else { return nil }
        guard let number = object[key] as? NSNumber, String(cString: number.objCType) != "c",
              let value = Self.exactInteger(number) else {
            throw APIError.badRequest(key, "\(key) must be an integer from -2^63 to 2^63 - 1")
        }
        return value
    }

    /// The integer an `NSNumber` holds, when it holds one exactly (integers stay exact; doubles
    /// must be whole and within range).
    static func exactInteger(_ number: NSNumber) -> Int? {
        switch String(cString: number.objCType) {
        case "d", "f":
            let value = number.doubleValue
            guard value.isFinite, value == value.rounded(), value >= -9.223372036854775808e18,
                  value < 9.223372036854775808e18 else { return nil }
            return Int(value)
        case "Q", "L", "I", "S", "C":
            return number.uint64Value <= UInt64(Int.max) ? Int(number.uint64Value) : nil
        default:
            return number.int64Value == Int64(truncatingIfNeeded: number.intValue) ? Int(number.int64Value) : nil
        }
    }

    func double(_ key: String) throws -> Double? {
        guard has(key) else { return nil }
        guard let number = object[key] as? NSNumber, String(cString: number.objCType) != "c", number.doubleValue.isFinite
        else { throw APIError.badRequest(key, "\(key) must be a number") }
        return number.doubleValue
    }

    func bool(_ key: String) throws -> Bool? {
        guard has(key) else { return nil }
        guard let number = object[key] as? NSNumber, String(cString: number.objCType) == "c" else {
            throw APIError.badRequest(key, "\(key) must be true or false")
        }
        return number.boolValue
    }
}

extension Response {
    /// A JSON response from a Foundation object (`NSNull()` gives `null`).
    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(bytes: SafeJSON.data(object))))
    }

    static func png(_ bytes: [UInt8]) -> Response {
        Response(status: .ok, headers: [.contentType: "image/png", .cacheControl: "private, max-age=31536000, immutable"],
                 body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// JSONSerialization traps (it does not throw) on objects it cannot encode, so everything is
/// checked first: a value that is not valid JSON becomes an error object instead of a crash.
enum SafeJSON {
    static func data(_ object: Any) -> Data {
        if object is NSNull { return Data("null".utf8) }
        guard JSONSerialization.isValidJSONObject(object),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return Data(#"{"error":{"code":"internal_error","field":null,"message":"response could not be encoded"}}"#.utf8)
        }
        return data
    }

    static func string(_ object: Any) -> String { String(decoding: data(object), as: UTF8.self) }
}
