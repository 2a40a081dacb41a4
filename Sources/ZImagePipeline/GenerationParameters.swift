import Foundation

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
    /// LoRAs to merge into the transformer for this generation (the server resolves the names in
    /// its LoRA folder; nil or empty: none). Optional so that stored jobs from before decode.
    public var loras: [LoRAReference]?
    /// img2img and inpainting: how much of the schedule runs from the init image, 0…1 (diffusers'
    /// `strength`; nil: 0.6 for img2img, 1.0 for inpainting, the pipelines' defaults). A Double, so
    /// that `int(N − N·strength)` rounds exactly as in Python.
    public var strength: Double?
    /// img2img / inpainting: the init image and the mask as PNG bytes (checked when the job is
    /// submitted, decoded and resized to width × height when it runs). Kept with the job, so a
    /// restarted server runs it again as it was asked.
    public var initImage: Data?
    public var mask: Data?
    /// Repaint where the mask is black instead of white (A1111's `inpainting_mask_invert`).
    public var maskInvert: Bool?

    public init(prompt: String) { self.prompt = prompt }

    /// Checks the engine's limits (`GenerationLimits.engine`) with the pipeline's field names;
    /// throws `GenerationError.invalidParameter` naming the first bad field.
    public func validate() throws {
        do { try validate(limits: .engine, names: .pipeline) } catch {
            throw GenerationError.invalidParameter(error.field, error.reason)
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
