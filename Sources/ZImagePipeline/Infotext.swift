import Foundation
import ZImageModels

/// The AUTOMATIC1111 "infotext" that goes into a PNG's `parameters` text chunk, so A1111,
/// Forge, Civitai and other tools read the settings back ("PNG Info").
public enum Infotext {
    /// `prompt`, an optional `Negative prompt:` line, then `Steps: …, Sampler: …, CFG scale: …,
    /// Seed: …, Size: WxH, Model: …` (A1111's key order and spelling).
    /// LoRAs are written as A1111 writes them: a `<lora:name:strength>` tag in the prompt (added
    /// when the prompt does not hold it already) and `Lora hashes: "name: hash, …"`.
    public static func render(_ p: GenerationParameters, seed: UInt64, model: String, version: String,
                              loras: [WeightedLoRA] = []) -> String {
        var prompt = p.prompt
        for weighted in loras {
            let tag = "<lora:\(weighted.lora.name):\(format(weighted.strength))>"
            if !prompt.contains("<lora:\(weighted.lora.name):") { prompt += prompt.isEmpty ? tag : " " + tag }
        }
        var lines = [prompt]
        if !p.negativePrompt.isEmpty { lines.append("Negative prompt: " + p.negativePrompt) }
        var fields = [
            "Steps: \(p.steps)", "Sampler: Euler", "Schedule type: Simple", "CFG scale: \(format(p.guidanceScale))",
            "Seed: \(seed)", "Size: \(p.width)x\(p.height)", "Model: \(quoted(model))",
        ]
        if let strength = p.strength { fields.append("Denoising strength: \(format(Float(strength)))") }
        fields.append("Shift: 3")
        if p.cfgNormalization > 0 { fields.append("CFG normalization: \(format(p.cfgNormalization))") }
        if p.cfgTruncation < 1 { fields.append("CFG truncation: \(format(p.cfgTruncation))") }
        let hashes = loras.filter { !$0.lora.shortHash.isEmpty }.map { "\($0.lora.name): \($0.lora.shortHash)" }
        if !hashes.isEmpty { fields.append("Lora hashes: \"" + hashes.joined(separator: ", ") + "\"") }
        fields.append("Version: \(quoted(version))")
        lines.append(fields.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    /// "7" for 7.0, "2.5" for 2.5 (as A1111 prints numbers).
    public static func format(_ value: Float) -> String {
        value == value.rounded() && abs(value) < 1e6 ? String(Int(value)) : String(value)
    }

    /// A1111 quotes values that contain its separators.
    static func quoted(_ value: String) -> String {
        value.contains(",") || value.contains(":") || value.contains("\"") || value.contains("\n")
            ? "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n") + "\""
            : value
    }
}
