import Foundation
import ZImagePipeline

/// What img2img, inpainting and LoRA requests share across the APIs: base64 or raw PNG images
/// checked before a job is queued, and LoRA names checked against the LoRA folder.
enum EditInputs {
    /// The largest init image or mask accepted (PNG bytes; two fit a 32 MiB JSON body as base64).
    static let maxImageBytes = 12 << 20

    /// PNG bytes from base64 text (a `data:image/png;base64,` prefix is allowed, as A1111 allows it),
    /// checked to be a PNG this server can read; errors are 400s naming `field`.
    static func png(base64 text: String, field: String) throws -> Data {
        var body = Substring(text)
        if body.hasPrefix("data:"), let comma = body.firstIndex(of: ",") { body = body[body.index(after: comma)...] }
        guard body.utf8.count <= maxImageBytes / 3 * 4 + 4 else {
            throw APIError(.contentTooLarge, code: "image_too_large", field: field,
                           message: "\(field) is larger than \(maxImageBytes >> 20) MiB")
        }
        guard let data = Data(base64Encoded: String(body), options: .ignoreUnknownCharacters), !data.isEmpty else {
            throw APIError.badRequest(field, "\(field) is not base64")
        }
        return try png(data, field: field)
    }

    /// Raw PNG bytes checked as `png(base64:field:)` checks them.
    static func png(_ data: Data, field: String) throws -> Data {
        guard data.count <= maxImageBytes else {
            throw APIError(.contentTooLarge, code: "image_too_large", field: field,
                           message: "\(field) is larger than \(maxImageBytes >> 20) MiB")
        }
        do {
            _ = try EditImages.decode([UInt8](data), field: field)
        } catch let failure as EditImages.Failure {
            throw APIError.badRequest(field, failure.description)
        }
        return data
    }

    /// The init image's size when the request gives none (rounded down to multiples of 16).
    static func size(of png: Data) -> (width: Int, height: Int)? {
        EditImages.pngSize([UInt8](png)).map { (max(16, $0.width / 16 * 16), max(16, $0.height / 16 * 16)) }
    }

    /// `<lora:name:s>` tags of the prompt, then `explicit` ones, each checked: the name must be a
    /// LoRA of the folder, the strength a number in −10…10; errors are 422s naming `field`.
    static func loras(prompt: String, explicit: [LoRAReference] = [], engine: any GenerationEngine,
                      field: String = "prompt") throws -> [LoRAReference]? {
        let parsed = PromptLoRAs.parse(prompt)
        if let bad = parsed.invalid.first {
            throw APIError(.unprocessableContent, code: "invalid_lora", field: field,
                           message: "\(bad): the strength is not a number")
        }
        let all = explicit + parsed.loras
        guard !all.isEmpty else { return nil }
        let names = Set(engine.availableLoRAs().map(\.name))
        for reference in all {
            guard names.contains(reference.name) else {
                throw APIError(.unprocessableContent, code: "unknown_lora", field: "lora",
                               message: "no LoRA named '\(reference.name)' in this server's LoRA folder")
            }
            guard reference.strength.isFinite, (-10...10).contains(reference.strength) else {
                throw APIError(.unprocessableContent, code: "invalid_lora", field: "lora",
                               message: "LoRA '\(reference.name)': strength \(reference.strength) is outside -10...10")
            }
        }
        return all
    }

    /// A1111's `GET /sdapi/v1/loras` entries.
    static func a1111List(_ entries: [LoRALibrary.Entry]) -> [[String: Any]] {
        entries.map { ["name": $0.name, "alias": $0.name, "path": $0.path, "metadata": [String: Any]()] }
    }
}
