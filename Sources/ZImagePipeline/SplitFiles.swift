import Foundation
import ZImageModels
import ZImageTensor
import ZImageTokenizer
import ZImageWeights

/// A model given as separate files, as ComfyUI keeps them: the transformer (ComfyUI's
/// Lumina2/NextDiT names or diffusers names, optionally prefixed `model.diffusion_model.`), the VAE
/// (BFL/Flux `ae.safetensors` or diffusers names), the Qwen3 text encoder (one file, with or
/// without `model.`) and a folder holding `tokenizer.json`, or none: the Qwen tokenizer zimage
/// carries (`BundledTokenizer`). Transformers may also be GGUF files (city96's, ComfyUI names) and
/// any file may hold pre-quantised fp8 weights (`WeightSet`, `Float8Scales`). The layout of each file is detected
/// from its keys, never from its name.
public struct SplitFiles: Sendable, Equatable {
    public var transformer: String
    public var textEncoder: String
    public var vae: String
    /// A folder with `tokenizer.json` (the files themselves carry no tokenizer); nil uses the
    /// bundled Qwen tokenizer (`BundledTokenizer`).
    public var tokenizer: String?

    /// The four paths; nothing is opened yet.
    public init(transformer: String, textEncoder: String, vae: String, tokenizer: String? = nil) {
        (self.transformer, self.textEncoder, self.vae, self.tokenizer) = (transformer, textEncoder, vae, tokenizer)
    }

    /// The configurations the files are read with; by default the real Z-Image-Turbo's (the files
    /// carry none). Shapes are verified at load, so another model's files are refused by key.
    public struct Configurations: Sendable, Equatable {
        public var transformer: ZImageTransformerConfiguration
        public var textEncoder: Qwen3Configuration
        public var autoencoder: AutoencoderConfiguration
        public var shift: Float

        /// Z-Image-Turbo's configurations unless given.
        public init(transformer: ZImageTransformerConfiguration = .zImageTurbo,
                    textEncoder: Qwen3Configuration = .qwen3_4B, autoencoder: AutoencoderConfiguration = .zImageTurbo,
                    shift: Float = 3) {
            (self.transformer, self.textEncoder, self.autoencoder, self.shift) = (transformer, textEncoder, autoencoder, shift)
        }
    }

    /// The transformer's weights under diffusers names.
    public static func transformerWeights(_ path: String) throws -> WeightSet {
        let weights = try WeightSet(path: path)
        return SingleFileLayout.isComfyTransformer(weights) ? try SingleFileLayout.comfyTransformer(weights)
            : try weights.renamingKeys { key in
                let prefix = "model.diffusion_model."
                return key.hasPrefix(prefix) ? String(key.dropFirst(prefix.count)) : key
            }
    }

    /// The VAE's weights under diffusers names.
    public static func autoencoderWeights(_ path: String) throws -> WeightSet {
        let weights = try WeightSet(path: path)
        return SingleFileLayout.isBFLAutoencoder(weights) ? try SingleFileLayout.bflAutoencoder(weights) : weights
    }
}

extension SplitFiles {
    /// Runs `load`, adding the file to the component named in key errors ("transformer (path)").
    static func naming<T>(_ file: String, _ load: () throws -> T) throws -> T {
        do {
            return try load()
        } catch let error as WeightLoadingError {
            let named = { (component: String) in "\(component) (\(file))" }
            switch error {
            case .missingKeys(let component, let keys): throw WeightLoadingError.missingKeys(component: named(component), keys: keys)
            case .unexpectedKeys(let component, let keys):
                throw WeightLoadingError.unexpectedKeys(component: named(component), keys: keys)
            case .shapeMismatch(let component, let key, let expected, let found):
                throw WeightLoadingError.shapeMismatch(component: named(component), key: key, expected: expected, found: found)
            case .dtypeNotLoadable(let component, let key, let dtype):
                throw WeightLoadingError.dtypeNotLoadable(component: named(component), key: key, dtype: dtype)
            default: throw error
            }
        }
    }
}

extension Qwen3Configuration {
    /// Qwen3-4B as Z-Image-Turbo uses it (the Hub's `text_encoder/config.json`).
    public static let qwen3_4B = Qwen3Configuration(
        hiddenSize: 2560, intermediateSize: 9728, numHiddenLayers: 36, numAttentionHeads: 32, numKeyValueHeads: 8,
        headDim: 128, rmsNormEps: 1e-6, ropeTheta: 1_000_000, vocabSize: 151_936, dtype: "bfloat16")
}

extension ZImagePipeline {
    /// Loads a model from split files (ComfyUI's), verified as the directory load is;
    /// `textEncoderPrecision` as for a model directory.
    public convenience init(splitFiles files: SplitFiles, configurations: SplitFiles.Configurations = .init(),
                            backend: any Backend, precision: Precision = .float32,
                            textEncoderPrecision: Precision? = nil,
                            placement: ComponentPlacement = .resident) throws {
        let weightDType: DType? = backend is any HostMemoryBorrowing && precision == .float32 ? nil : precision.dtype
        let tokenizer = try files.tokenizer.map { try BPETokenizer(path: ($0 as NSString).appendingPathComponent("tokenizer.json")) }
            ?? BundledTokenizer.load()
        let textFormat = try precision.textEncoderLinearFormat(textEncoderPrecision)
        let textEncoder = try SplitFiles.naming(files.textEncoder) {
            try Qwen3TextEncoder(configuration: configurations.textEncoder, weights: WeightSet(path: files.textEncoder),
                                 backend: backend, dtype: weightDType, linearFormat: textFormat,
                                 embeddingOnHost: placement.embeddingOnHost,
                                 streamsLayers: placement.textEncoder == .streamed)
        }
        let transformer = try SplitFiles.naming(files.transformer) {
            try placement.streamsTransformerBlocks || placement.textEncoder == .streamed
                ? ZImageTransformer(configuration: configurations.transformer,
                                        streamingFrom: SplitFiles.transformerWeights(files.transformer), backend: backend,
                                        dtype: weightDType, linearFormat: precision.transformerLinearFormat,
                                        streamsImageBlocks: placement.streamsTransformerBlocks)
                : ZImageTransformer(configuration: configurations.transformer,
                                        weights: SplitFiles.transformerWeights(files.transformer), backend: backend,
                                        dtype: weightDType, linearFormat: precision.transformerLinearFormat)
        }
        let vaeWeights = try SplitFiles.naming(files.vae) { try SplitFiles.autoencoderWeights(files.vae) }
        let vaeDType = precision.autoencoderWeightDType(weightDType)
        let decoder = try SplitFiles.naming(files.vae) {
            try VAEDecoder(configuration: configurations.autoencoder, weights: vaeWeights, backend: backend,
                           dtype: vaeDType)
        }
        let encoder = try SplitFiles.naming(files.vae) {
            try VAEEncoder.isPresent(in: vaeWeights)
                ? VAEEncoder(configuration: configurations.autoencoder, weights: vaeWeights, backend: backend,
                             dtype: vaeDType)
                : nil
        }
        self.init(backend: backend, precision: precision, tokenizer: tokenizer, textEncoder: textEncoder,
                  transformer: transformer, decoder: decoder, encoder: encoder, shift: configurations.shift,
                  modelName: URL(fileURLWithPath: files.transformer).deletingPathExtension().lastPathComponent)
    }
}

extension SplitFiles {
    /// What a `.safetensors` file holds, judged by its keys.
    public enum Role: String, Sendable, CaseIterable { case transformer, textEncoder = "text encoder", vae }

    /// The role of one checkpoint's keys, or nil when it is none of the three.
    public static func role(of weights: WeightSet) -> Role? {
        let keys = weights.entries.keys
        func has(_ suffix: String) -> Bool { keys.contains { $0 == suffix || $0.hasSuffix("." + suffix) } }
        if SingleFileLayout.isComfyTransformer(weights)
            || (has("layers.0.adaLN_modulation.0.weight") && has("cap_embedder.1.weight")) { return .transformer }
        if SingleFileLayout.isBFLAutoencoder(weights) || has("decoder.mid_block.resnets.0.norm1.weight") { return .vae }
        if has("layers.0.self_attn.q_norm.weight") && has("embed_tokens.weight") { return .textEncoder }
        return nil
    }

    /// Finds the three files in a ComfyUI `models/` folder (or any folder) by their keys, looking
    /// at every `.safetensors` and `.gguf` up to two levels down; the tokenizer folder is given separately.
    /// Several candidates for one role, or none, is an error naming them.
    public static func detect(in folder: String, tokenizer: String? = nil) throws -> SplitFiles {
        var found: [Role: [String]] = [:]
        for path in Self.checkpoints(under: folder, depth: 2) {
            guard let weights = try? WeightSet(path: path), let role = role(of: weights) else { continue }
            found[role, default: []].append(path)
        }
        func one(_ role: Role) throws -> String {
            let paths = found[role] ?? []
            guard paths.count == 1 else {
                throw GenerationError.modelNotSupported(paths.isEmpty
                    ? "\(folder): no \(role.rawValue) checkpoint found (looked at the keys of every .safetensors file)"
                    : "\(folder): \(paths.count) \(role.rawValue) checkpoints (\(paths.joined(separator: ", "))); "
                        + "choose with --transformer, --text-encoder and --vae")
            }
            return paths[0]
        }
        return SplitFiles(transformer: try one(.transformer), textEncoder: try one(.textEncoder), vae: try one(.vae),
                          tokenizer: tokenizer)
    }

    static func checkpoints(under folder: String, depth: Int) -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        return names.flatMap { name -> [String] in
            let path = (folder as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
            if isDirectory.boolValue { return depth > 0 ? checkpoints(under: path, depth: depth - 1) : [] }
            return name.hasSuffix(".safetensors") || name.lowercased().hasSuffix(".gguf") ? [path] : []
        }
    }
}

extension SplitFiles {
    /// What `zimage inspect` says about a checkpoint's layout and what loading does with it,
    /// including how quantised tensors are stored (`WeightSet.storageSummary`).
    public static func layoutDescription(of weights: WeightSet) -> String? {
        let names = keyLayoutDescription(of: weights)
        guard let storage = weights.storageSummary else { return names }
        return (names.map { $0 + "; " } ?? "") + storage
    }

    static func keyLayoutDescription(of weights: WeightSet) -> String? {
        let keys = weights.entries.keys
        switch role(of: weights) {
        case .transformer:
            guard SingleFileLayout.isComfyTransformer(weights) else {
                return "diffusers transformer: loaded as it is"
            }
            let prefixed = keys.contains { $0.hasPrefix("model.diffusion_model.") }
            return "ComfyUI (Lumina2/NextDiT) transformer" + (prefixed ? " saved with model.diffusion_model." : "")
                + ": keys renamed to diffusers', each fused attention.qkv cut into q, k, v at load"
        case .vae:
            return SingleFileLayout.isBFLAutoencoder(weights)
                ? "BFL/LDM VAE (Flux ae.safetensors): decoder keys renamed to diffusers', 1x1 attention kernels read as linear weights"
                : "diffusers VAE: loaded as it is"
        case .textEncoder:
            return keys.contains { $0.hasPrefix("model.") }
                ? "Qwen3 text encoder (Qwen3ForCausalLM keys, model.): loaded as it is"
                : "Qwen3 text encoder (Qwen3Model keys): the model. prefix is added at load"
        case nil:
            return nil
        }
    }
}
