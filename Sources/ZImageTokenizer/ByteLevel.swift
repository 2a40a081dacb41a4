/// GPT-2's byte-to-unicode table (used by the ByteLevel pre-tokenizer and decoder): printable
/// bytes map to themselves, the other 68 to U+0100 onwards in byte order.
public enum ByteLevel {
    /// The vocabulary character that stands for `byte`.
    public static func scalar(for byte: UInt8) -> Unicode.Scalar { byteToScalar[Int(byte)] }

    static let byteToScalar: [Unicode.Scalar] = {
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for byte in printable { table[byte] = Unicode.Scalar(UInt8(byte)) }
        var next: UInt32 = 256
        for byte in 0..<256 where !printable.contains(byte) {
            table[byte] = Unicode.Scalar(next) ?? " "   // 256…323: always valid scalars
            next += 1
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var table: [UInt32: UInt8] = [:]
        for (byte, scalar) in byteToScalar.enumerated() { table[scalar.value] = UInt8(byte) }
        return table
    }()

    /// The byte-level string of some UTF-8 bytes.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var result = String.UnicodeScalarView()
        for byte in bytes { result.append(byteToScalar[Int(byte)]) }
        return String(result)
    }

    /// The bytes behind a byte-level string (characters outside the table are kept as UTF-8).
    static func decode(_ text: String, into bytes: inout [UInt8]) {
        for scalar in text.unicodeScalars {
            if let byte = scalarToByte[scalar.value] {
                bytes.append(byte)
            } else {
                bytes.append(contentsOf: Array(String(scalar).utf8))
            }
        }
    }
}
