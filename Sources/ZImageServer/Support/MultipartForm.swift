import Foundation

/// A `multipart/form-data` body (RFC 7578) split into its parts: what OpenAI's
/// `images/edits` sends. Only what forms use: `Content-Disposition` name and filename, bodies as
/// bytes; malformed input is a typed failure, never a crash.
struct MultipartForm {
    struct Part {
        var name: String
        var filename: String?
        var body: Data
    }

    var parts: [Part]

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The boundary of a `multipart/form-data; boundary=…` content type.
    static func boundary(contentType: String) -> String? {
        let pieces = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard pieces.first?.lowercased() == "multipart/form-data" else { return nil }
        for piece in pieces.dropFirst() where piece.lowercased().hasPrefix("boundary=") {
            var value = String(piece.dropFirst("boundary=".count))
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value.isEmpty || value.utf8.count > 200 ? nil : value
        }
        return nil
    }

    init(_ body: Data, boundary: String) throws {
        let bytes = [UInt8](body)
        let delimiter = [UInt8]("--\(boundary)".utf8)
        var positions: [Int] = []
        var index = 0
        while let found = Self.find(delimiter, in: bytes, from: index) {
            positions.append(found)
            index = found + delimiter.count
        }
        guard positions.count >= 2 else { throw Failure(description: "the multipart body has no parts") }
        var parts: [Part] = []
        for (start, end) in zip(positions, positions.dropFirst()) {
            var begin = start + delimiter.count
            // After the delimiter: CRLF (or "--" for the closing one, which has nothing after it here).
            if begin + 1 < bytes.count, bytes[begin] == 13, bytes[begin + 1] == 10 { begin += 2 }
            var finish = end
            if finish >= 2, bytes[finish - 2] == 13, bytes[finish - 1] == 10 { finish -= 2 }
            guard begin <= finish else { continue }
            let chunk = Array(bytes[begin..<finish])
            guard let split = Self.find([13, 10, 13, 10], in: chunk, from: 0) else {
                throw Failure(description: "a multipart part has no header end")
            }
            let headers = String(decoding: chunk[0..<split], as: UTF8.self)
            var name: String?, filename: String?
            for line in headers.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
                name = Self.parameter("name", in: line)
                filename = Self.parameter("filename", in: line)
            }
            guard let name else { throw Failure(description: "a multipart part has no name") }
            parts.append(Part(name: name, filename: filename, body: Data(chunk[(split + 4)...])))
        }
        self.parts = parts
    }

    /// The first part called `name` (or `name[]`, as clients name array fields).
    func part(_ name: String) -> Part? { parts.first { $0.name == name || $0.name == name + "[]" } }

    /// A text field.
    func text(_ name: String) -> String? { part(name).map { String(decoding: $0.body, as: UTF8.self) } }

    static func parameter(_ key: String, in line: String) -> String? {
        for piece in line.split(separator: ";").dropFirst() {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix(key + "=") else { continue }
            var value = String(trimmed.dropFirst(key.count + 1))
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        let first = needle[0]
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == first, Array(haystack[index..<(index + needle.count)]) == needle { return index }
            index += 1
        }
        return nil
    }
}
