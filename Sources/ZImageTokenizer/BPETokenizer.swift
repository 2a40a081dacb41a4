import Foundation

/// A byte-level BPE tokenizer read from a Hugging Face `tokenizer.json` of the Qwen2/Qwen3 kind:
/// NFC normaliser, the Qwen split regex and ByteLevel pre-tokenizer, a BPE model without unknown
/// token or byte fallback, and added tokens matched verbatim (leftmost, longest) before anything
/// else. Encoding adds no special tokens (Qwen adds none). Immutable and thread-safe.
public final class BPETokenizer: @unchecked Sendable {
    // Immutable after init except `cache`, which `cacheLock` guards.
    /// Vocabulary size including added tokens (highest id + 1).
    public let vocabularySize: Int
    private let vocabulary: [String: Int32]
    private let tokenText: [Int32: String]
    /// Merge ranks keyed by the two ids; value: (rank, merged id).
    private let merges: [UInt64: (rank: Int32, merged: Int32)]
    private let byteIDs: [Int32]
    private let ignoreMerges: Bool
    private let normalizeNFC: Bool
    /// Added tokens: content → id, grouped by first UTF-8 byte, longest first.
    private let addedByFirstByte: [UInt8: [(bytes: [UInt8], id: Int32)]]
    private let addedIDs: Set<Int32>
    /// Ids of added tokens marked special.
    public let specialTokenIDs: Set<Int32>
    /// Pieces already encoded, keyed by their UTF-8 bytes (not by `String`, whose equality is
    /// canonical equivalence: U+11938 and U+11935 U+11930 are equal strings but different tokens).
    private var cache: [[UInt8]: [Int32]] = [:]
    private let cacheLock = NSLock()

    /// Reads `path` (a tokenizer.json).
    public convenience init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw TokenizerError.fileNotFound(path: path) }
        try self.init(data: data, source: path)
    }

    /// Parses tokenizer.json bytes; `source` names them in errors.
    public init(data: Data, source: String) throws {
        let json: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw TokenizerError.malformed(path: source, detail: "the top level is not an object")
            }
            json = object
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw TokenizerError.malformed(path: source, detail: "invalid JSON")
        }
        guard let model = json["model"] as? [String: Any] else {
            throw TokenizerError.malformed(path: source, detail: "no 'model' object")
        }
        guard model["type"] as? String == "BPE" else {
            throw TokenizerError.unsupported(path: source, detail: "model type is \(model["type"] ?? "missing"), not BPE")
        }
        if model["byte_fallback"] as? Bool == true {
            throw TokenizerError.unsupported(path: source, detail: "byte_fallback BPE (SentencePiece style)")
        }
        normalizeNFC = try Self.checkNormalizer(json["normalizer"], source: source)
        try Self.checkPreTokenizer(json["pre_tokenizer"], source: source)
        ignoreMerges = model["ignore_merges"] as? Bool ?? false

        guard let vocab = model["vocab"] as? [String: Any] else {
            throw TokenizerError.malformed(path: source, detail: "model.vocab is not an object")
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(vocab.count)
        for (token, value) in vocab {
            guard let id = value as? Int else { throw TokenizerError.malformed(path: source, detail: "id of '\(token)'") }
            vocabulary[token] = Int32(id)
        }
        var byteIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            guard let id = vocabulary[String(ByteLevel.byteToScalar[byte])] else {
                throw TokenizerError.unsupported(path: source, detail: "vocabulary lacks byte \(byte): not byte-level")
            }
            byteIDs[byte] = id
        }
        guard let mergeList = model["merges"] as? [Any] else {
            throw TokenizerError.malformed(path: source, detail: "model.merges is not a list")
        }
        var merges: [UInt64: (rank: Int32, merged: Int32)] = [:]
        merges.reserveCapacity(mergeList.count)
        for (rank, entry) in mergeList.enumerated() {
            let pair: (String, String)
            if let text = entry as? String {
                let parts = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw TokenizerError.malformed(path: source, detail: "merge '\(text)'") }
                pair = (String(parts[0]), String(parts[1]))
            } else if let parts = entry as? [String], parts.count == 2 {
                pair = (parts[0], parts[1])
            } else {
                throw TokenizerError.malformed(path: source, detail: "merge \(rank) is neither \"a b\" nor [a, b]")
            }
            guard let left = vocabulary[pair.0], let right = vocabulary[pair.1], let merged = vocabulary[pair.0 + pair.1]
            else { throw TokenizerError.malformed(path: source, detail: "merge \(rank) uses tokens outside the vocabulary") }
            let key = Self.key(left, right)
            if merges[key] == nil { merges[key] = (Int32(rank), merged) }
        }

        var tokenText: [Int32: String] = [:]
        for (token, id) in vocabulary { tokenText[id] = token }
        var added: [UInt8: [(bytes: [UInt8], id: Int32)]] = [:]
        var addedIDs = Set<Int32>(), special = Set<Int32>()
        for entry in json["added_tokens"] as? [[String: Any]] ?? [] {
            guard let id = entry["id"] as? Int, let content = entry["content"] as? String, !content.isEmpty else {
                throw TokenizerError.malformed(path: source, detail: "added token without id or content")
            }
            let bytes = Array(content.utf8)
            added[bytes[0], default: []].append((bytes, Int32(id)))
            tokenText[Int32(id)] = content
            vocabulary[content] = Int32(id)
            addedIDs.insert(Int32(id))
            if entry["special"] as? Bool == true { special.insert(Int32(id)) }
        }
        for key in added.keys { added[key]?.sort { $0.bytes.count > $1.bytes.count } }

        self.vocabulary = vocabulary
        self.tokenText = tokenText
        self.merges = merges
        self.byteIDs = byteIDs
        self.addedByFirstByte = added
        self.addedIDs = addedIDs
        self.specialTokenIDs = special
        self.vocabularySize = Int((tokenText.keys.max() ?? -1) + 1)
    }

    private static func checkNormalizer(_ value: Any?, source: String) throws -> Bool {
        guard let normalizer = value as? [String: Any] else { return false }   // null: none
        switch normalizer["type"] as? String {
        case "NFC": return true
        case "Sequence" where (normalizer["normalizers"] as? [[String: Any]])?.allSatisfy({ $0["type"] as? String == "NFC" }) == true:
            return true
        default:
            throw TokenizerError.unsupported(path: source, detail: "normalizer \(normalizer["type"] ?? "?")")
        }
    }

    private static func checkPreTokenizer(_ value: Any?, source: String) throws {
        guard let pre = value as? [String: Any], pre["type"] as? String == "Sequence",
              let steps = pre["pretokenizers"] as? [[String: Any]], steps.count == 2,
              steps[0]["type"] as? String == "Split",
              (steps[0]["pattern"] as? [String: Any])?["Regex"] as? String == QwenPreTokenizer.pattern,
              steps[0]["behavior"] as? String == "Isolated", steps[0]["invert"] as? Bool != true,
              steps[1]["type"] as? String == "ByteLevel", steps[1]["use_regex"] as? Bool == false,
              steps[1]["add_prefix_space"] as? Bool != true
        else {
            throw TokenizerError.unsupported(
                path: source, detail: "pre-tokenizer is not Qwen's Split(regex) + ByteLevel(use_regex: false)")
        }
    }

    @inline(__always) private static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    // MARK: Encoding

    /// Token ids of `text` (no special tokens added).
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        let bytes = Array(text.utf8)
        var segmentStart = 0, i = 0
        while i < bytes.count {
            if let candidates = addedByFirstByte[bytes[i]],
               let match = candidates.first(where: { Self.matches($0.bytes, bytes, at: i) }) {
                encodeOrdinary(bytes[segmentStart..<i], into: &ids)
                ids.append(match.id)
                i += match.bytes.count
                segmentStart = i
            } else {
                i += 1
            }
        }
        encodeOrdinary(bytes[segmentStart..<bytes.count], into: &ids)
        return ids
    }

    /// Token ids of UTF-8 `bytes`; invalid UTF-8 is an error naming the offset.
    public func encode(utf8 bytes: [UInt8]) throws -> [Int32] {
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var offset = 0
        var text = String.UnicodeScalarView()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                text.append(scalar)
                offset += UTF8.width(scalar)
            case .emptyInput: break loop
            case .error: throw TokenizerError.invalidUTF8(byteOffset: offset)
            }
        }
        return encode(String(text))
    }

    @inline(__always) private static func matches(_ needle: [UInt8], _ haystack: [UInt8], at start: Int) -> Bool {
        guard start + needle.count <= haystack.count else { return false }
        for k in 0..<needle.count where haystack[start + k] != needle[k] { return false }
        return true
    }

    private func encodeOrdinary(_ segment: ArraySlice<UInt8>, into ids: inout [Int32]) {
        guard !segment.isEmpty else { return }
        var text = String(decoding: segment, as: UTF8.self)
        if normalizeNFC { text = ReferenceNFC.normalize(text) }
        let scalars = Array(text.unicodeScalars)
        for piece in QwenPreTokenizer.split(scalars) {
            var bytes: [UInt8] = []
            for scalar in scalars[piece] { UTF8.encode(scalar) { bytes.append($0) } }
            ids.append(contentsOf: encodeWord(bytes))
        }
    }

    /// BPE of one pre-token: its bytes as byte-level symbols, then the lowest-ranked adjacent
    /// pair merged (leftmost on ties) until no merge applies.
    private func encodeWord(_ bytes: [UInt8]) -> [Int32] {
        if let cached = cacheLock.withLock({ cache[bytes] }) { return cached }
        var result: [Int32]
        if ignoreMerges, let whole = vocabulary[ByteLevel.encode(bytes)] {
            result = [whole]
        } else {
            result = bytes.map { byteIDs[Int($0)] }
            while result.count > 1 {
                var best = Int32.max, position = -1, merged: Int32 = 0
                for j in 0..<(result.count - 1) {
                    if let merge = merges[Self.key(result[j], result[j + 1])], merge.rank < best {
                        best = merge.rank
                        position = j
                        merged = merge.merged
                    }
                }
                guard position >= 0 else { break }
                result[position] = merged
                result.remove(at: position + 1)
            }
        }
        cacheLock.withLock {
            if cache.count > 200_000 { cache.removeAll(keepingCapacity: true) }
            cache[bytes] = result
        }
        return result
    }

    // MARK: Decoding and lookup

    /// The vocabulary string of each id (byte-level form; added tokens as written).
    public func tokens(_ ids: [Int32]) -> [String] { ids.map { tokenText[$0] ?? "<unk:\($0)>" } }

    /// Text of `ids`; invalid UTF-8 from partial byte sequences is replaced by U+FFFD.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard let text = tokenText[id] else { continue }
            if addedIDs.contains(id) {
                if skipSpecialTokens && specialTokenIDs.contains(id) { continue }
                bytes.append(contentsOf: Array(text.utf8))
            } else {
                ByteLevel.decode(text, into: &bytes)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The id of a vocabulary entry or added token.
    public func id(of token: String) -> Int32? { vocabulary[token] }
}
