/// The Qwen2/Qwen3 pre-tokenizer split, written out by hand for speed and exactness:
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// with "Isolated" behaviour: every match is a piece, alternatives tried in order at each
/// position, greedy quantifiers backtracking as Oniguruma's would. `\s` is Unicode White_Space,
/// `\p{L}` letters, `\p{N}` numbers (one scalar per `\p{N}` match: digits are single pieces), by
/// Unicode 16.0, the version HF's regex tables follow (Swift's are newer).
public enum QwenPreTokenizer {
    /// The pattern string as tokenizer.json spells it (the only one accepted).
    public static let pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    enum Kind: UInt8 { case letter, number, space, newline, other }

    @inline(__always)
    static func kind(_ scalar: Unicode.Scalar) -> Kind {
        let value = scalar.value
        if value < 0x80 {
            switch value {
            case 0x0A, 0x0D: return .newline
            case 0x09, 0x0B, 0x0C, 0x20: return .space
            case 0x30...0x39: return .number
            case 0x41...0x5A, 0x61...0x7A: return .letter
            default: return .other
            }
        }
        let properties = scalar.properties
        // HF's regex engine knows Unicode 16.0; characters assigned later are unassigned ("other") to it.
        guard let age = properties.age, (age.major, age.minor) <= (16, 0) else { return .other }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return properties.isWhitespace ? .space : .other
        }
    }

    /// Splits `scalars` into pieces (index ranges).
    static func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let kinds = scalars.map(kind)
        let n = scalars.count
        var pieces: [Range<Int>] = []
        var i = 0
        @inline(__always) func isSpace(_ j: Int) -> Bool { kinds[j] == .space || kinds[j] == .newline }
        while i < n {
            let end = match(at: i, scalars, kinds, n, isSpace)
            pieces.append(i..<end)
            i = end
        }
        return pieces
    }

    @inline(__always)
    private static func match(at i: Int, _ s: [Unicode.Scalar], _ kinds: [Kind], _ n: Int,
                              _ isSpace: (Int) -> Bool) -> Int {
        // 1. Contractions, case-insensitive (ſ folds to s).
        if s[i] == "'", i + 1 < n {
            func folded(_ j: Int) -> Character? {
                guard j < n else { return nil }
                let v = s[j].value
                if v == 0x17F { return "s" }
                guard v < 0x80, let scalar = Unicode.Scalar(v) else { return nil }
                return Character(scalar).lowercased().first
            }
            let first = folded(i + 1), second = folded(i + 2)
            switch (first, second) {
            case ("s", _), ("t", _), ("m", _), ("d", _):
                // 're, 've, 'll are two letters; 's 't 'm 'd one (alternation order does not matter:
                // no contraction is a prefix of another).
                return i + 2
            case ("r", "e"), ("v", "e"), ("l", "l"):
                return i + 3
            default: break
            }
        }
        // 2. [^\r\n\p{L}\p{N}]?\p{L}+
        if kinds[i] == .letter {
            var j = i + 1
            while j < n, kinds[j] == .letter { j += 1 }
            return j
        }
        if kinds[i] != .newline, kinds[i] != .number, i + 1 < n, kinds[i + 1] == .letter {
            var j = i + 2
            while j < n, kinds[j] == .letter { j += 1 }
            return j
        }
        // 3. \p{N}
        if kinds[i] == .number { return i + 1 }
        // 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
        var start = i
        if s[i] == " ", i + 1 < n, kinds[i + 1] == .other { start = i + 1 }
        if kinds[start] == .other {
            var j = start + 1
            while j < n, kinds[j] == .other { j += 1 }
            while j < n, kinds[j] == .newline { j += 1 }
            return j
        }
        // Whitespace from here on: the run [i, runEnd).
        var runEnd = i
        var lastNewline = -1
        while runEnd < n, isSpace(runEnd) {
            if kinds[runEnd] == .newline { lastNewline = runEnd }
            runEnd += 1
        }
        // 5. \s*[\r\n]+ : up to and including the run's last newline.
        if lastNewline >= 0 { return lastNewline + 1 }
        // 6. \s+(?!\S) : the whole run at the end of text, else all but its last scalar.
        if runEnd == n { return runEnd }
        if runEnd - i > 1 { return runEnd - 1 }
        // 7. \s+
        return runEnd
    }
}
