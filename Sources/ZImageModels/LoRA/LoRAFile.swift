import Crypto
import Foundation
import ZImageTensor
import ZImageWeights

/// A LoRA (or LoKr) file for the Z-Image transformer, read and converted to diffusers module names.
///
/// Every tensor is read to the host as float32 (LoRA files are small next to the model); the
/// conversion is `ZImageLoRAConversion`. Nothing is applied here: see `LoRAMerge`.
public struct LoRAFile: Sendable {
    /// The file's path.
    public let path: String
    /// The name A1111 and ComfyUI show: the file name without `.safetensors`.
    public let name: String
    /// Update factors by transformer module (`layers.0.attention.to_q`, …).
    public let modules: [String: LoRAFactors]
    /// A1111's short hash: the first 12 hex digits of the SHA-256 of the file after its header
    /// (the "addnet" hash A1111 and Civitai show for safetensors LoRAs; empty for in-memory LoRAs).
    public let shortHash: String

    /// Reads and converts `path`; every problem (not a safetensors file, unknown keys, factors that
    /// do not fit each other) is a `LoRAError` or `SafetensorsError` naming the file and key.
    public init(path: String) throws {
        let file = try SafetensorsFile(path: path)
        let display = URL(fileURLWithPath: path).lastPathComponent
        var tensors: [String: HostMatrix] = [:]
        for info in file.tensors {
            guard info.dtype.isFloatingPoint || info.shape.count == 0 else {
                throw LoRAError.malformedTensor(file: display, key: info.name, detail: "has dtype \(info.dtype)")
            }
            let values: [Float]
            do {
                values = try HostConversion.decode([UInt8](file.bytes(of: info.name)), dtype: info.dtype)
            } catch {
                throw LoRAError.malformedTensor(file: display, key: info.name, detail: "has dtype \(info.dtype)")
            }
            tensors[info.name] = HostMatrix(shape: info.shape.dims, values: values)
        }
        self.path = path
        name = Self.displayName(path)
        modules = try ZImageLoRAConversion.convert(tensors, metadata: file.metadata, file: display)
        shortHash = try Self.shortHash(path: path, dataStart: file.dataStart)
    }

    static func shortHash(path: String, dataStart: Int) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw LoRAError.empty(file: path) }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(dataStart))
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().prefix(6).map { String(format: "%02x", $0) }.joined()
    }

    /// A LoRA from factors already converted (tests, and callers that build one in memory).
    public init(name: String, modules: [String: LoRAFactors], path: String = "") {
        self.path = path
        self.name = name
        self.modules = modules
        shortHash = ""
    }

    /// `dir/detail_slider.safetensors` → `detail_slider`.
    public static func displayName(_ path: String) -> String {
        let file = URL(fileURLWithPath: path).lastPathComponent
        return file.hasSuffix(".safetensors") ? String(file.dropLast(".safetensors".count)) : file
    }
}

/// A LoRA with the strength it is applied at (A1111's `<lora:name:0.8>`, ComfyUI's strength_model).
public struct WeightedLoRA: Sendable {
    public let lora: LoRAFile
    public let strength: Float

    /// The accepted strength range (A1111 sliders stop at ±2; trainers' sliders LoRAs go further).
    public static let strengthRange: ClosedRange<Float> = -10...10

    public init(_ lora: LoRAFile, strength: Float) throws {
        guard strength.isFinite, Self.strengthRange.contains(strength) else {
            throw LoRAError.invalidStrength(file: lora.name, strength: strength)
        }
        self.lora = lora
        self.strength = strength
    }
}
