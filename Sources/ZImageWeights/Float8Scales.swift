import Foundation
import ZImageTensor

/// ComfyUI's pre-quantised fp8 checkpoints, read as ComfyUI reads them (model-files.md §fp8):
///
/// - plain casts: `F8_E4M3`/`F8_E5M2` weights without scales, widened as `w.float()`;
/// - legacy "scaled fp8": a `scaled_fp8` marker tensor, `{layer}.scale_weight` (float32, one value or
///   one per output row), an optional `{layer}.scale_input` (only for fp8 matmuls; not needed to
///   widen, dropped): `w.float() * scale_weight`;
/// - `comfy_quant`: `{layer}.weight_scale` (+ `input_scale`, dropped), the format in a
///   `{layer}.comfy_quant` uint8 JSON tensor (`{"format":"float8_e4m3fn"}`) or in the header's
///   `_quantization_metadata` (`{"format_version":"1.0","layers":{layer:{"format":…}}}`):
///   `w.float() * weight_scale`. Formats other than `float8_e4m3fn`/`float8_e5m2` (`nvfp4`,
///   `mxfp8`, `int8_tensorwise`, …) are refused naming the format and key.
///
/// The scales are attached to their weights (`TensorEncoding.scaledFloat8`) and the helper tensors
/// leave the key space, so models see one `{layer}.weight` as in the unquantised checkpoint.
enum Float8Scales {
    static let float8Formats: Set<String> = ["float8_e4m3fn", "float8_e5m2"]
    static let helperSuffixes = [".scale_weight", ".scale_input", ".weight_scale", ".input_scale", ".comfy_quant"]

    static func attach(files: inout [String: SafetensorsFile], entries: inout [String: TensorInfo],
                       shards: [SafetensorsFile]) throws {
        let markers = entries.keys.filter { $0 == "scaled_fp8" || $0.hasSuffix(".scaled_fp8") }
        let formats = try comfyFormats(files: files, entries: entries, shards: shards)
        for (layer, format) in formats.sorted(by: { $0.key < $1.key }) where !float8Formats.contains(format.name) {
            throw WeightLoadingError.unsupportedQuantization(path: format.path, key: layer + ".weight",
                                                             format: "comfy_quant \(format.name)")
        }
        guard !markers.isEmpty || !formats.isEmpty
            || entries.values.contains(where: { $0.dtype == .float8E4M3 || $0.dtype == .float8E5M2 }) else { return }
        var consumed = Set(markers)
        for key in entries.keys.sorted() where key.hasSuffix(".weight") {
            guard var info = entries[key], let file = files[key] else { continue }
            let layer = String(key.dropLast(".weight".count))
            let isFloat8 = info.dtype == .float8E4M3 || info.dtype == .float8E5M2
            if formats[layer] != nil && !isFloat8 {
                throw WeightLoadingError.quantization(path: file.path, key: key,
                                                      detail: "comfy_quant names it fp8 but it is stored as \(info.dtype.safetensorsName)")
            }
            guard isFloat8 else { continue }
            for suffix in helperSuffixes where entries[layer + suffix] != nil { consumed.insert(layer + suffix) }
            let scaleKey = [layer + ".weight_scale", layer + ".scale_weight"].first { entries[$0] != nil }
            guard let scaleKey, let scaleInfo = entries[scaleKey], let scaleFile = files[scaleKey] else { continue }
            let rows = info.shape.rank == 0 ? 1 : info.shape[0]
            guard scaleInfo.encoding == .plain, scaleInfo.shape.count == 1 || scaleInfo.shape.count == rows,
                  let scales = Dequantization.smallFloats(scaleFile.bytes(of: scaleInfo), dtype: scaleInfo.dtype),
                  scales.count == scaleInfo.shape.count, scales.count == 1 || scales.count == rows else {
                throw WeightLoadingError.quantization(
                    path: scaleFile.path, key: scaleKey,
                    detail: "a scale must be F32, F16 or BF16 with 1 or \(rows) values; it is "
                        + "\(scaleInfo.dtype.safetensorsName) \(scaleInfo.shape) for '\(key)' \(info.shape)")
            }
            info.encoding = .scaledFloat8(scales: scales)
            entries[key] = info
        }
        for key in consumed {
            entries[key] = nil
            files[key] = nil
        }
    }

    /// The `comfy_quant` format of each layer: from `{layer}.comfy_quant` tensors and from each
    /// shard's `_quantization_metadata`.
    private static func comfyFormats(files: [String: SafetensorsFile], entries: [String: TensorInfo],
                                     shards: [SafetensorsFile]) throws -> [String: (name: String, path: String)] {
        var formats: [String: (name: String, path: String)] = [:]
        for shard in shards {
            guard let text = shard.metadata["_quantization_metadata"] else { continue }
            let layers = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["layers"]
            guard let layers = layers as? [String: Any] else {
                throw WeightLoadingError.quantization(path: shard.path, key: "_quantization_metadata",
                                                      detail: "not a JSON object with a 'layers' object")
            }
            for (layer, value) in layers {
                guard let format = (value as? [String: Any])?["format"] as? String else {
                    throw WeightLoadingError.quantization(path: shard.path, key: "_quantization_metadata",
                                                          detail: "layer '\(layer)' has no string 'format'")
                }
                formats[layer] = (format, shard.path)
            }
        }
        for key in entries.keys where key.hasSuffix(".comfy_quant") {
            guard let info = entries[key], let file = files[key] else { continue }
            let object = info.dtype == .uint8 || info.dtype == .int8
                ? try? JSONSerialization.jsonObject(with: Data(file.bytes(of: info))) as? [String: Any] : nil
            guard let format = object?["format"] as? String else {
                throw WeightLoadingError.quantization(path: file.path, key: key,
                                                      detail: "not uint8 bytes of a JSON object with a string 'format'")
            }
            formats[String(key.dropLast(".comfy_quant".count))] = (format, file.path)
        }
        return formats
    }
}
