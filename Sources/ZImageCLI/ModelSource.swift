import ArgumentParser
import Foundation
import ZImageHub
import ZImagePipeline
import ZImageTensor

/// `--transformer FILE --text-encoder FILE --vae FILE --tokenizer DIR`: a model as separate files
/// (ComfyUI's), each file's layout found from its keys.
struct SplitFileOptions: ParsableArguments {
    @Option(help: "Transformer file (ComfyUI diffusion_models/, e.g. z_image_turbo_bf16.safetensors).")
    var transformer: String?

    @Option(name: .customLong("text-encoder"), help: "Qwen3 text-encoder file (ComfyUI text_encoders/qwen_3_4b.safetensors).")
    var textEncoder: String?

    @Option(help: "VAE file (ComfyUI vae/ae.safetensors, BFL layout, or diffusers).")
    var vae: String?

    @Option(help: "Folder with tokenizer.json for split files (default: the Qwen tokenizer zimage carries).")
    var tokenizer: String?

    var isUsed: Bool { transformer != nil || textEncoder != nil || vae != nil }
}

/// Which pipeline the model flags name: a diffusers folder or cached repository (`--model`), a
/// folder of ComfyUI files (`--model models/`, found by their keys), or split files.
enum ModelSource {
    /// The pipeline, or nil when no model was named (the demo model is used then).
    static func pipeline(model: String?, split: SplitFileOptions, backend: any Backend,
                         precision: Precision, textEncoderPrecision: Precision? = nil,
                         placement: ComponentPlacement = .resident) throws -> ZImagePipeline? {
        let resolved = try model.map { try ModelLocator.resolve($0) }
        if split.isUsed {
            guard let transformer = split.transformer, let textEncoder = split.textEncoder, let vae = split.vae else {
                throw CLIError("--transformer, --text-encoder and --vae go together")
            }
            let files = SplitFiles(transformer: transformer, textEncoder: textEncoder, vae: vae,
                                   tokenizer: try tokenizerFolder(split.tokenizer, model: resolved))
            return try ZImagePipeline(splitFiles: files, backend: backend, precision: precision,
                                      textEncoderPrecision: textEncoderPrecision, placement: placement)
        }
        guard let resolved else { return nil }
        if FileManager.default.fileExists(atPath: resolved + "/model_index.json") {
            let pipeline = try ZImagePipeline(modelDirectory: resolved, backend: backend, precision: precision,
                                              textEncoderPrecision: textEncoderPrecision, placement: placement)
            // A cached repository is named by the repository, not by its snapshot's commit folder.
            if let model, resolved != model { pipeline.modelName = displayName(model) }
            return pipeline
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CLIError("\(resolved): no such folder")
        }
        let files = try SplitFiles.detect(in: resolved, tokenizer: tokenizerFolder(split.tokenizer, model: resolved))
        return try ZImagePipeline(splitFiles: files, backend: backend, precision: precision,
                                  textEncoderPrecision: textEncoderPrecision, placement: placement)
    }

    /// `Z-Image-Turbo` for `Tongyi-MAI/Z-Image-Turbo@rev`.
    static func displayName(_ repository: String) -> String {
        String(repository.split(separator: "@").first?.split(separator: "/").last ?? Substring(repository))
    }

    /// `--tokenizer DIR`, else the model folder's `tokenizer/`, else Z-Image-Turbo's own in the
    /// Hugging Face cache, else nil: the Qwen tokenizer zimage carries (`BundledTokenizer`).
    private static func tokenizerFolder(_ given: String?, model: String?) throws -> String? {
        if let given { return given }
        if let model, FileManager.default.fileExists(atPath: model + "/tokenizer/tokenizer.json") {
            return model + "/tokenizer"
        }
        if let repo = try? RepositoryID("Tongyi-MAI/Z-Image-Turbo") {
            let cache = HubCache(root: HubEnvironment.current().cacheDirectory, repo: repo)
            if let commit = cache.commit(for: "main"),
               FileManager.default.fileExists(atPath: cache.snapshot(commit) + "/tokenizer/tokenizer.json") {
                return cache.snapshot(commit) + "/tokenizer"
            }
        }
        return nil
    }
}
