import Foundation
import ZImageTensor

/// A diffusers model directory (the official Hugging Face layout of `Tongyi-MAI/Z-Image-Turbo`):
/// `model_index.json` naming the pipeline's components, and one folder per component with its
/// `config.json` (or `scheduler_config.json` / `tokenizer_config.json`) and weights.
public struct ModelDirectory {
    /// One component (transformer, text_encoder, vae, scheduler, tokenizer, ...).
    public struct Component {
        public var name: String
        /// `[library, class]` from `model_index.json`, e.g. `["diffusers", "AutoencoderKL"]`.
        public var library: String
        public var className: String
        public var directory: String
        /// The component's configuration, when it has one.
        public var config: [String: Any]?
        /// Path of that configuration file.
        public var configPath: String?
        /// Path of the weight file or shard index, when the component has weights.
        public var weightsPath: String?
    }

    public let path: String
    /// `_class_name` of the pipeline (`ZImagePipeline`).
    public let pipelineClass: String
    /// `_diffusers_version` recorded in the index, if any.
    public let diffusersVersion: String?
    /// Components in name order.
    public let components: [Component]

    /// Reads `model_index.json` and every component's configuration; weights are found but not opened.
    public init(path: String) throws {
        let indexPath = (path as NSString).appendingPathComponent("model_index.json")
        let index = try JSONFile.object(at: indexPath)
        guard let pipelineClass = index["_class_name"] as? String else {
            throw WeightLoadingError.malformedJSON(path: indexPath, detail: "no '_class_name' string")
        }
        var components: [Component] = []
        for (name, value) in index where !name.hasPrefix("_") {
            guard let pair = value as? [Any] else { continue }   // null: component not present
            guard pair.count == 2, let library = pair[0] as? String, let className = pair[1] as? String else {
                throw WeightLoadingError.malformedJSON(path: indexPath, detail: "'\(name)' is not [library, class]")
            }
            let directory = (path as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
            else { throw WeightLoadingError.missingComponent(name: name, directory: path) }
            let (config, configPath) = try Self.configuration(in: directory)
            components.append(Component(name: name, library: library, className: className, directory: directory,
                                        config: config, configPath: configPath,
                                        weightsPath: Self.weightsPath(in: directory)))
        }
        self.path = path
        self.pipelineClass = pipelineClass
        self.diffusersVersion = index["_diffusers_version"] as? String
        self.components = components.sorted { $0.name < $1.name }
    }

    /// The component called `name`.
    public func component(_ name: String) throws -> Component {
        guard let found = components.first(where: { $0.name == name }) else {
            throw WeightLoadingError.missingComponent(name: name, directory: path)
        }
        return found
    }

    /// Opens the weights of component `name`.
    public func weights(of name: String) throws -> WeightSet {
        let component = try component(name)
        guard let weightsPath = component.weightsPath else {
            throw WeightLoadingError.noWeights(directory: component.directory)
        }
        return try WeightSet(path: weightsPath)
    }

    private static func configuration(in directory: String) throws -> ([String: Any]?, String?) {
        for file in ["config.json", "scheduler_config.json", "tokenizer_config.json"] {
            let path = (directory as NSString).appendingPathComponent(file)
            if FileManager.default.fileExists(atPath: path) { return (try JSONFile.object(at: path), path) }
        }
        return (nil, nil)
    }

    /// The weights file of a component folder, preferring diffusers' names, then transformers',
    /// and sharded indices over single files; else the only `.safetensors` file present.
    static func weightsPath(in directory: String) -> String? {
        let candidates = [
            "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors",
            "model.safetensors.index.json", "model.safetensors",
        ]
        for name in candidates {
            let path = (directory as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".safetensors") }
        return files.count == 1 ? (directory as NSString).appendingPathComponent(files[0]) : nil
    }
}
