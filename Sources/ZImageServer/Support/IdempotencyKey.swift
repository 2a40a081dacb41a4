import Foundation
import HTTPTypes

/// The optional `Idempotency-Key` header of the submit routes.
enum IdempotencyKey {
    /// At most this many bytes.
    static let maxLength = 255

    /// The key of a request: nil without the header; 400 when it is empty, too long or not printable ASCII.
    static func parse(_ value: String?) throws -> String? {
        guard let value else { return nil }
        guard !value.isEmpty, value.utf8.count <= maxLength, value.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7e }) else {
            throw APIError.badRequest("Idempotency-Key",
                                      "Idempotency-Key must be 1 to \(maxLength) printable ASCII characters without spaces")
        }
        return value
    }

    /// A fingerprint of a request (its JSON body with keys sorted, and the route), so a key reused
    /// for another request is told apart from a retry. Not a security hash: keys are not secrets.
    static func digest(_ body: [String: Any], source: String) -> String {
        let json = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])).map(Array.init) ?? []
        let bytes = Array(source.utf8) + [0] + json
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var second: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            second = (second &+ UInt64(byte)) &* 0x9e37_79b9_7f4a_7c15
        }
        return String(format: "%016llx%016llx-%d", hash, second, bytes.count)
    }
}

extension HTTPField.Name {
    /// `Idempotency-Key` (IETF httpapi draft, as Stripe and OpenAI clients send it).
    static let idempotencyKey = Self("Idempotency-Key")!
    /// Set to `true` on an answer that is a retry's: the job an earlier request with the key made.
    static let idempotentReplayed = Self("Idempotent-Replayed")!
}
