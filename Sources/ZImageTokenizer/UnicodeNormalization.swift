import Foundation

/// NFC as Hugging Face `tokenizers` computes it. Its normalization tables (the
/// `unicode-normalization-alignments` crate) predate Unicode 13, so characters assigned later are
/// unassigned to it: they never compose, decompose or reorder. Swift's tables are newer, so text
/// is cut at every such character, each piece is normalized with Foundation, and the newer
/// characters are kept as they are. (Seen on the corpus: U+11935 U+11930 stays two characters,
/// U+0D3B (Unicode 10) does not move before U+0301, U+16121 is not decomposed.)
/// Foundation on Linux also leaves a precomposed LV syllable followed by a trailing jamo
/// (U+AC00 U+11A8) uncomposed, so Hangul composition is applied again afterwards.
enum ReferenceNFC {
    /// The last Unicode version the reference's tables know (U+0D3B, new in 10.0, is unassigned to it).
    static let referenceVersion = (major: 9, minor: 0)

    static func normalize(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        var result = String.UnicodeScalarView()
        var segment = String.UnicodeScalarView()
        func flush() {
            guard !segment.isEmpty else { return }
            composeHangul(String(segment).precomposedStringWithCanonicalMapping.unicodeScalars, into: &result)
            segment.removeAll()
        }
        for scalar in text.unicodeScalars {
            if isKnownToReference(scalar) {
                segment.append(scalar)
            } else {
                flush()
                result.append(scalar)
            }
        }
        flush()
        return String(result)
    }

    @inline(__always)
    static func isKnownToReference(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return (age.major, age.minor) <= referenceVersion
    }

    /// Unicode's algorithmic Hangul composition (L+V → LV, LV+T → LVT) over already normalised text.
    static func composeHangul(_ scalars: String.UnicodeScalarView, into result: inout String.UnicodeScalarView) {
        let sBase: UInt32 = 0xAC00, lBase: UInt32 = 0x1100, vBase: UInt32 = 0x1161, tBase: UInt32 = 0x11A7
        let lCount: UInt32 = 19, vCount: UInt32 = 21, tCount: UInt32 = 28, sCount: UInt32 = 11172
        var last: UInt32?
        for scalar in scalars {
            let value = scalar.value
            if let previous = last {
                if previous >= lBase, previous < lBase + lCount, value >= vBase, value < vBase + vCount {
                    last = sBase + ((previous - lBase) * vCount + (value - vBase)) * tCount
                    continue
                }
                if previous >= sBase, previous < sBase + sCount, (previous - sBase) % tCount == 0,
                   value > tBase, value < tBase + tCount {
                    last = previous + (value - tBase)
                    continue
                }
                if let composed = Unicode.Scalar(previous) { result.append(composed) }
            }
            last = value
        }
        if let previous = last, let composed = Unicode.Scalar(previous) { result.append(composed) }
    }
}
