import Foundation
import ZImageModels
import ZImageTensor
import ZImageTokenizer
import ZImageWeights

/// A tiny Z-Image with random weights, in the official directory layout, so `zimage generate`
/// and `zimage serve` run anywhere in seconds. It draws abstract images only: its weights are
/// random. Made on first use (deterministically) and kept in the user's cache.
public enum DemoModel {
    /// Bump when the demo's layout or weights change (a new folder is made).
    /// v2: the VAE file holds an encoder too (img2img); the decoder's weights are v1's.
    static let version = 2

    /// `$XDG_CACHE_HOME/zimage/demo-model-v2`, else `~/.cache/zimage/demo-model-v2`.
    public static func defaultDirectory() -> String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSTemporaryDirectory()) + "/.cache"
        return base + "/zimage/demo-model-v\(version)"
    }

    /// The demo model's folder, written first if it is not there yet.
    public static func ensure(at directory: String = defaultDirectory()) throws -> String {
        if FileManager.default.fileExists(atPath: directory + "/model_index.json") { return directory }
        let staging = directory + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.removeItem(atPath: staging)
        try write(to: staging)
        try FileManager.default.createDirectory(atPath: (directory as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        if rename(staging, directory) != 0 {
            try? FileManager.default.removeItem(atPath: staging)
            // Another process may have made it first.
            guard FileManager.default.fileExists(atPath: directory + "/model_index.json") else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: directory])
            }
        }
        return directory
    }

    static let transformer = ZImageTransformerConfiguration(
        allPatchSize: [2], allFPatchSize: [1], inChannels: 16, dim: 64, nLayers: 2, nRefinerLayers: 1, nHeads: 2,
        nKVHeads: 2, normEps: 1e-5, qkNorm: true, capFeatDim: 32, ropeTheta: 256, tScale: 1000,
        axesDims: [8, 12, 12], axesLens: [1536, 512, 512])
    static let autoencoder = AutoencoderConfiguration(
        inChannels: 3, outChannels: 3, latentChannels: 16, blockOutChannels: [16, 32, 32, 32], layersPerBlock: 1,
        normNumGroups: 8, scalingFactor: 0.3611, shiftFactor: 0.1159, midBlockAddAttention: true,
        usePostQuantConv: false)
    static let specialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    static var textEncoder: Qwen3Configuration {
        Qwen3Configuration(hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 3, numAttentionHeads: 4,
                           numKeyValueHeads: 2, headDim: 8, rmsNormEps: 1e-6, ropeTheta: 1_000_000,
                           vocabSize: 256 + specialTokens.count)
    }

    static func write(to root: String) throws {
        let files = FileManager.default
        for folder in ["scheduler", "text_encoder", "tokenizer", "transformer", "vae"] {
            try files.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        try json(["_class_name": "ZImagePipeline", "_diffusers_version": "0.42.1", "_zimage_demo": true,
                  "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                  "text_encoder": ["transformers", "Qwen3Model"], "tokenizer": ["transformers", "Qwen2Tokenizer"],
                  "transformer": ["diffusers", "ZImageTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]],
             to: root + "/model_index.json")
        try json(["_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000,
                  "use_dynamic_shifting": false, "shift": 3.0], to: root + "/scheduler/scheduler_config.json")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(transformer).write(to: URL(fileURLWithPath: root + "/transformer/config.json"))
        try encoder.encode(autoencoder).write(to: URL(fileURLWithPath: root + "/vae/config.json"))
        try encoder.encode(textEncoder).write(to: URL(fileURLWithPath: root + "/text_encoder/config.json"))
        try writeTokenizer(to: root + "/tokenizer")

        var random = SplitMix64(seed: 20_251_126)
        // The checkpoint holds every layer and the final norm, as the official one does; the
        // encoder loads all but the last layer.
        var full = textEncoder
        full.numHiddenLayers += 1
        var encoderShapes = Qwen3TextEncoder.parameterSpec(full).shapes
        encoderShapes["model.norm.weight"] = [textEncoder.hiddenSize]
        try weights(encoderShapes, dtype: .bfloat16, random: &random, to: root + "/text_encoder/model.safetensors")
        try weights(ZImageTransformer.parameterSpec(transformer).shapes, dtype: .float32, random: &random,
                    to: root + "/transformer/diffusion_pytorch_model.safetensors")
        // Sorted keys: decoder.* draw first, so the decoder is v1's; encoder.* come after.
        let vaeShapes = VAEDecoder.parameterSpec(autoencoder).shapes
            .merging(VAEEncoder.parameterSpec(autoencoder).shapes) { first, _ in first }
        try weights(vaeShapes, dtype: .bfloat16, random: &random, to: root + "/vae/diffusion_pytorch_model.safetensors")
    }

    /// Random weights: norm weights near 1, biases near 0, matrices ~ N(0, 1/fan_in).
    static func weights(_ shapes: [String: Shape], dtype: DType, random: inout SplitMix64, to path: String) throws {
        let entries = try shapes.keys.sorted().map { key -> SafetensorsWriter.Entry in
            let shape = shapes[key] ?? []
            let fanIn = shape.rank >= 2 ? shape.dims.dropFirst().reduce(1, *) : 1
            let values: [Float]
            if shape.rank == 1 && (key.contains("norm") || key.contains("embedder.0")) {
                values = (0..<shape.count).map { _ in 1 + 0.1 * random.normal() }
            } else if shape.rank == 1 {
                values = (0..<shape.count).map { _ in 0.05 * random.normal() }
            } else {
                let scale = 1 / Float(fanIn).squareRoot()
                values = (0..<shape.count).map { _ in scale * random.normal() }
            }
            return try SafetensorsWriter.Entry(name: key, values: values, shape: shape, dtype: dtype)
        }
        try SafetensorsWriter.write(entries, metadata: ["format": "pt", "zimage": "demo model, random weights"],
                                    to: path)
    }

    /// A byte-level BPE tokenizer.json of the Qwen kind: 256 byte symbols, no merges, and the
    /// chat template's special tokens.
    static func writeTokenizer(to folder: String) throws {
        var vocabulary: [String: Int] = [:]
        for byte in 0..<256 { vocabulary[String(ByteLevel.scalar(for: UInt8(byte)))] = byte }
        let added = specialTokens.enumerated().map { index, content -> [String: Any] in
            ["id": 256 + index, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
                                        "use_regex": false]
        let tokenizer: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": ["type": "NFC"],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": QwenPreTokenizer.pattern], "behavior": "Isolated", "invert": false],
                byteLevel,
            ]],
            "post_processor": byteLevel, "decoder": byteLevel,
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocabulary, "merges": [String]()],
        ]
        try json(tokenizer, to: folder + "/tokenizer.json")
        try json(["tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                  "model_max_length": 131072], to: folder + "/tokenizer_config.json")
    }

    static func json(_ object: Any, to path: String) throws {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: path))
    }
}

extension SplitMix64 {
    /// A normal value by Box–Muller from two draws (deterministic across machines).
    mutating func normal() -> Float {
        let u1 = (Double(next() >> 11) + 1) / 9_007_199_254_740_993, u2 = Double(next() >> 11) / 9_007_199_254_740_992
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * .pi * u2))
    }
}
