import Foundation
import Testing
import ZImageCPU
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

@Suite struct ModelDirectoryTests {
    @Test func readsTheOfficialLayout() throws {
        let model = try ModelDirectory(path: Fixtures.tinyModel)
        #expect(model.pipelineClass == "ZImagePipeline")
        #expect(model.components.map(\.name) == ["scheduler", "text_encoder", "tokenizer", "transformer", "vae"])
        let transformer = try model.component("transformer")
        #expect(transformer.className == "ZImageTransformer2DModel")
        #expect(transformer.config?["dim"] as? Int == 64)
        #expect(transformer.weightsPath?.hasSuffix("diffusion_pytorch_model.safetensors.index.json") == true)
        #expect(try model.component("scheduler").config?["shift"] as? Double == 3.0)
        #expect(try model.component("scheduler").weightsPath == nil)
        #expect(try model.component("text_encoder").weightsPath?.hasSuffix("model.safetensors.index.json") == true)
        #expect(try model.component("vae").weightsPath?.hasSuffix("diffusion_pytorch_model.safetensors") == true)
    }

    @Test func shardedWeightsMergeIntoOneKeySpace() throws {
        let weights = try ModelDirectory(path: Fixtures.tinyModel).weights(of: "text_encoder")
        #expect(weights.shards.count == 2)
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
            Fixtures.path("tiny-zimage/text_encoder/model.safetensors.index.json")))) as? [String: Any]
        let map = try #require(index?["weight_map"] as? [String: String])
        #expect(Set(weights.keys) == Set(map.keys))
        #expect(weights.entries["model.embed_tokens.weight"]?.dtype == .bfloat16)
        // The key comes from the shard the index names.
        let shard = try #require(weights.files["model.embed_tokens.weight"])
        #expect(shard.path.hasSuffix(try #require(map["model.embed_tokens.weight"])))
    }

    @Test func missingComponentFolderIsNamed() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try writeJSON(["_class_name": "ZImagePipeline", "vae": ["diffusers", "AutoencoderKL"]],
                      to: directory + "/model_index.json")
        #expect(throws: WeightLoadingError.missingComponent(name: "vae", directory: directory)) {
            try ModelDirectory(path: directory)
        }
    }

    @Test func malformedModelIndexIsReported() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: directory + "/model_index.json"))
        #expect { try ModelDirectory(path: directory) } throws: { error in
            guard case WeightLoadingError.malformedJSON(let path, _) = error else { return false }
            return path.hasSuffix("model_index.json")
        }
        #expect(throws: WeightLoadingError.fileNotFound(path: directory + "/nope/model_index.json")) {
            try ModelDirectory(path: directory + "/nope")
        }
    }

    @Test func brokenShardIndexesAreReported() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try SafetensorsWriter.write([.init(name: "a", values: [1], shape: [1])], to: directory + "/one.safetensors")
        try SafetensorsWriter.write([.init(name: "a", values: [2], shape: [1])], to: directory + "/two.safetensors")
        let index = directory + "/model.safetensors.index.json"

        try writeJSON(["weight_map": ["a": "one.safetensors", "b": "one.safetensors"]], to: index)
        #expect(throws: WeightLoadingError.keyMissingFromShard(key: "b", shard: "one.safetensors")) {
            try WeightSet(path: index)
        }
        try writeJSON(["weight_map": ["a": "absent.safetensors"]], to: index)
        #expect(throws: WeightLoadingError.malformedIndex(path: index, detail: "shard absent.safetensors is missing")) {
            try WeightSet(path: index)
        }
        try writeJSON(["weight_map": ["a": "../one.safetensors"]], to: index)
        #expect(throws: WeightLoadingError.self) { try WeightSet(path: index) }
        try writeJSON(["weight_map": ["a": "one.safetensors", "x": "two.safetensors"]], to: index)
        #expect { try WeightSet(path: index) } throws: { error in
            if case WeightLoadingError.keyMissingFromShard(key: "x", shard: "two.safetensors") = error { return true }
            return false
        }
        // A key held by two shards is ambiguous.
        #expect { try WeightSet(shards: [SafetensorsFile(path: directory + "/one.safetensors"),
                                         SafetensorsFile(path: directory + "/two.safetensors")]) } throws: { error in
            if case WeightLoadingError.duplicateKey(key: "a", _, _) = error { return true }
            return false
        }
    }
}

@Suite struct ParameterLoadingTests {
    func weights(in directory: String) throws -> WeightSet {
        let path = directory + "/w.safetensors"
        try SafetensorsWriter.write([
            .init(name: "layer.weight", values: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], shape: [2, 3]),
            .init(name: "layer.bias", values: [1, 2], shape: [2]),
            .init(name: "encoder.conv.weight", values: [9], shape: [1]),
        ], to: path)
        return try WeightSet(path: path)
    }

    @Test func verifiedLoadNamesEveryProblem() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let set = try weights(in: directory)
        let exact: [String: Shape] = ["layer.weight": [2, 3], "layer.bias": [2]]

        #expect(throws: WeightLoadingError.missingKeys(component: "vae", keys: ["layer.scale"])) {
            try ParameterSpec(shapes: exact.merging(["layer.scale": [2]]) { a, _ in a },
                              ignoredPrefixes: ["encoder."]).verify(set, component: "vae")
        }
        #expect(throws: WeightLoadingError.unexpectedKeys(component: "vae", keys: ["encoder.conv.weight"])) {
            try ParameterSpec(shapes: exact).verify(set, component: "vae")
        }
        #expect(throws: WeightLoadingError.shapeMismatch(component: "vae", key: "layer.weight", expected: [3, 2],
                                                         found: [2, 3])) {
            try ParameterSpec(shapes: ["layer.weight": [3, 2], "layer.bias": [2]], ignoredPrefixes: ["encoder."])
                .verify(set, component: "vae")
        }
    }

    @Test func loadConvertsToTheRequestedDType() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let spec = ParameterSpec(shapes: ["layer.weight": [2, 3], "layer.bias": [2]], ignoredPrefixes: ["encoder."])
        let store = try spec.load(from: weights(in: directory), component: "vae", on: CPUBackend(), dtype: .bfloat16)
        let weight = try store["layer.weight"]
        #expect(weight.dtype == .bfloat16)
        #expect(try weight.toFloats() == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6].map { HalfPrecision.roundedToBFloat16($0) })
        #expect(store.tensors.count == 2)
        #expect(throws: WeightLoadingError.self) { try store["encoder.conv.weight"] }
    }

    /// The tiny fixture's fp32 transformer checkpoint loads in full through the verified path.
    @Test func tinyTransformerLoads() throws {
        let weights = try ModelDirectory(path: Fixtures.tinyModel).weights(of: "transformer")
        let spec = ParameterSpec(shapes: weights.entries.mapValues(\.shape))
        let store = try spec.load(from: weights, component: "transformer", on: CPUBackend(), dtype: .bfloat16)
        #expect(store.tensors.count == weights.entries.count)
        #expect(weights.entries.values.allSatisfy { $0.dtype == .float32 })
        let x = try store["all_x_embedder.2-1.weight"]
        #expect(x.shape == [64, 64] && x.dtype == .bfloat16)
    }
}
