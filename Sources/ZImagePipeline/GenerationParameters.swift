/// What to generate. Defaults are Z-Image-Turbo's (8 steps, no guidance, 1024²).
public struct GenerationParameters: Sendable, Codable, Equatable {
    public var prompt: String
    public var negativePrompt: String = ""
    public var width: Int = 1024
    public var height: Int = 1024
    /// Model evaluations (Turbo: 8).
    public var steps: Int = 8
    /// Classifier-free guidance scale: 0 turns it off (Turbo); any g > 0 computes
    /// pos + g·(pos − neg) with the negative prompt (so 1 is not "neutral", as in the reference).
    public var guidanceScale: Float = 0
    /// Rescale the guided prediction to at most this multiple of the positive one's norm (0: off).
    public var cfgNormalization: Float = 0
    /// Skip guidance at steps whose model time exceeds this (1: never skip).
    public var cfgTruncation: Float = 1
    /// First seed; image i of a batch uses seed + i. `nil` picks a random seed (reported back).
    public var seed: UInt64?
    /// Number of images.
    public var batchSize: Int = 1
    /// Decode the VAE in overlapping tiles (less memory for large images).
    public var tiledDecode: Bool = false

    public init(prompt: String) { self.prompt = prompt }

    /// Limits checked before any work starts.
    public static let sizeRange = 64...4096, stepRange = 1...100, batchRange = 1...64
    public static let guidanceRange: ClosedRange<Float> = 0...30

    /// Throws `GenerationError.invalidParameter` naming the first bad field.
    public func validate() throws {
        for (name, value) in [("width", width), ("height", height)] {
            guard Self.sizeRange.contains(value) else {
                throw GenerationError.invalidParameter(name, "\(value) is outside \(Self.sizeRange.lowerBound)...\(Self.sizeRange.upperBound)")
            }
            guard value % 16 == 0 else {
                throw GenerationError.invalidParameter(name, "\(value) is not a multiple of 16 (try \(value / 16 * 16) or \((value / 16 + 1) * 16))")
            }
        }
        guard Self.stepRange.contains(steps) else {
            throw GenerationError.invalidParameter("steps", "\(steps) is outside \(Self.stepRange.lowerBound)...\(Self.stepRange.upperBound)")
        }
        guard Self.batchRange.contains(batchSize) else {
            throw GenerationError.invalidParameter("batch", "\(batchSize) is outside \(Self.batchRange.lowerBound)...\(Self.batchRange.upperBound)")
        }
        guard guidanceScale.isFinite, Self.guidanceRange.contains(guidanceScale) else {
            throw GenerationError.invalidParameter("guidance", "\(guidanceScale) is outside 0...30")
        }
        guard cfgNormalization.isFinite, cfgNormalization >= 0 else {
            throw GenerationError.invalidParameter("cfg_normalization", "must be 0 (off) or positive")
        }
        guard cfgTruncation.isFinite, cfgTruncation >= 0 else {
            throw GenerationError.invalidParameter("cfg_truncation", "must be between 0 and 1")
        }
        if let seed, seed > UInt64(Int64.max) {
            throw GenerationError.invalidParameter("seed", "\(seed) is larger than 2^63 - 1")
        }
    }
}

/// Failures of a generation, each naming what went wrong.
public enum GenerationError: Error, Equatable, CustomStringConvertible {
    case invalidParameter(String, String)
    case cancelled
    case modelNotSupported(String)

    public var description: String {
        switch self {
        case .invalidParameter(let field, let reason): "invalid \(field): \(reason)"
        case .cancelled: "cancelled"
        case .modelNotSupported(let detail): "unsupported model: \(detail)"
        }
    }
}
