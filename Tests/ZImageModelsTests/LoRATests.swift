import Foundation
import Testing
import ZImageCPU
import ZImageModels
import ZImagePipeline
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// LoRA conversion and merging against diffusers 0.42.1 + peft (tools/fixtures/make_edit_fixtures.py):
/// every circulating key format of one LoRA gives the weights diffusers' `fuse_lora` gives; a
/// LoKr and two LoRAs at different strengths too; whole images within the pipeline bounds.
@Suite(.serialized) struct LoRATests {
    static let formats = ["peft", "peft_default", "aitoolkit", "kohya", "kohya_fused"]
    let backend = CPUBackend()

    func lora(_ name: String) throws -> LoRAFile { try LoRAFile(path: Fixtures.path("lora/\(name).safetensors")) }

    func baseStore() throws -> ParameterStore {
        let pipeline = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: backend)
        return pipeline.baseTransformer.parameters
    }

    /// Merged weights equal diffusers' fused ones (changed keys only; all of them changed).
    func expectMerged(_ loras: [WeightedLoRA], _ prefix: String, base: ParameterStore, allKeys: Bool) throws {
        let golden = try SafetensorsFile(path: Fixtures.path("stages/lora_merged.safetensors"))
        let merged = try LoRAMerge.apply(loras, to: base)
        let keys = golden.names.filter { $0.hasPrefix(prefix + ".") }
        #expect(!keys.isEmpty)
        for name in keys {
            let key = String(name.dropFirst(prefix.count + 1))
            let ours = try #require(merged.tensors[key], "\(key) not merged")
            let error = relativeError(try ours.toFloats(), try golden.tensor(name, on: backend).toFloats())
            #expect(error < 1e-6, "\(prefix) \(key): relative error \(error)")
        }
        if allKeys {
            // Nothing else changed: the merged store shares every other tensor with the base.
            let changed = Set(merged.tensors.keys.filter { merged.tensors[$0]?.address != base.tensors[$0]?.address })
            #expect(changed == Set(keys.map { String($0.dropFirst(prefix.count + 1)) }))
        }
    }

    @Test func everyFormatMergesToDiffusersFusedWeights() throws {
        let base = try baseStore()
        for format in Self.formats {
            let file = try lora(format)
            #expect(file.modules.count == 25, "\(format): \(file.modules.count) modules")
            try expectMerged([WeightedLoRA(file, strength: 1)], "one", base: base, allKeys: true)
        }
    }

    @Test func twoLoRAsWithStrengthsIncludingALoKr() throws {
        let loras = [try WeightedLoRA(lora("kohya"), strength: 0.8), try WeightedLoRA(lora("lokr"), strength: 0.5)]
        try expectMerged(loras, "two", base: try baseStore(), allKeys: false)
    }

    @Test func kohyaNamesConvertAsDiffusersDoes() {
        #expect(ZImageLoRAConversion.underscoreKey("layers_0_attention_to_out_0.lora_down.weight")
            == "layers.0.attention.to_out.0.lora.down.weight")
        #expect(ZImageLoRAConversion.underscoreKey("layers_1_feed_forward_w2.alpha") == "layers.1.feed_forward.w2.alpha")
        #expect(ZImageLoRAConversion.underscoreKey("layers_0_attention_to_q.alpha") == "layers.0.attention.to_q.alpha")
        #expect(ZImageLoRAConversion.normalizeOutKey("layers.0.attention.out.alpha") == "layers.0.attention.to_out.0.alpha")
        #expect(ZImageLoRAConversion.fixupModuleNames("noise.refiner.0.adaLN.modulation.0")
            == "noise_refiner.0.adaLN_modulation.0")
    }

    @Test func anUnknownKeyIsRefusedNamingIt() throws {
        #expect(throws: LoRAError.unknownKeys(file: "unknown_key.safetensors",
                                              keys: ["lora_unet_layers_0_attention_to_q.lora_mid.weight"])) {
            try lora("unknown_key")
        }
    }

    @Test func changedBytesCountEachWeightOnceAsBF16() throws {
        func low(_ rows: Int, _ columns: Int) -> LoRAFactors {
            .lowRank(down: HostMatrix(shape: [1, columns], values: .init(repeating: 0, count: columns)),
                     up: HostMatrix(shape: [rows, 1], values: .init(repeating: 0, count: rows)))
        }
        let a = LoRAFile(name: "a", modules: ["layers.0.attention.to_q": low(64, 64), "layers.0.feed_forward.w1": low(160, 64)])
        let b = LoRAFile(name: "b", modules: ["layers.0.attention.to_q": low(64, 64)])
        // to_q (64 × 64) once though both touch it, w1 (160 × 64): 2 bytes each.
        #expect(LoRAMerge.changedBytes([try WeightedLoRA(a, strength: 1), try WeightedLoRA(b, strength: 0.5)])
            == 2 * (64 * 64 + 160 * 64))
        #expect(LoRAMerge.changedBytes([try WeightedLoRA(b, strength: 1)]) == 2 * 64 * 64)
        #expect(LoRAMerge.changedBytes([]) == 0)
        // A hostile file's shapes saturate instead of trapping.
        let side = 1 << 31   // 2 × 2³¹ × 2³¹ bytes overflows Int
        let huge = LoRAFile(name: "huge", modules: [
            "x": .lowRank(down: HostMatrix(shape: [1, side], values: []), up: HostMatrix(shape: [side, 1], values: [])),
            "y": .lowRank(down: HostMatrix(shape: [1, 3], values: []), up: HostMatrix(shape: [3, 1], values: [])),
        ])
        #expect(LoRAMerge.changedBytes([try WeightedLoRA(huge, strength: 1)]) == Int.max / 4)
    }

    @Test func aLoRAForAnotherModelIsRefusedNamingTheModule() throws {
        let tooDeep = LoRAFile(name: "other", modules: [
            "layers.40.attention.to_q": .lowRank(down: HostMatrix(shape: [1, 64], values: .init(repeating: 0, count: 64)),
                                                 up: HostMatrix(shape: [64, 1], values: .init(repeating: 0, count: 64))),
        ])
        #expect(throws: LoRAError.unknownModule(file: "other", key: "layers.40.attention.to_q.weight",
                                                module: "layers.40.attention.to_q")) {
            try LoRAMerge.apply([WeightedLoRA(tooDeep, strength: 1)], to: try baseStore())
        }
        let wider = LoRAFile(name: "wide", modules: [
            "layers.0.attention.to_q": .lowRank(down: HostMatrix(shape: [1, 96], values: .init(repeating: 0, count: 96)),
                                                up: HostMatrix(shape: [96, 1], values: .init(repeating: 0, count: 96))),
        ])
        #expect(throws: LoRAError.shapeMismatch(file: "wide", key: "layers.0.attention.to_q.weight",
                                                module: "layers.0.attention.to_q", expected: [64, 64], found: [96, 96])) {
            try LoRAMerge.apply([WeightedLoRA(wider, strength: 1)], to: try baseStore())
        }
        #expect(throws: LoRAError.invalidStrength(file: "wide", strength: .infinity)) {
            try WeightedLoRA(wider, strength: .infinity)
        }
    }

    @Test func aCorruptFileIsATypedError() throws {
        let path = NSTemporaryDirectory() + "zimage-corrupt-\(UInt32.random(in: 0...UInt32.max)).safetensors"
        try Data([1, 2, 3, 4, 5, 6, 7, 8, 9]).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: SafetensorsError.self) { try LoRAFile(path: path) }
    }

    /// Whole images: diffusers with the LoRA loaded (PEFT layers, not fused) against the merged model.
    func expectImage(_ fixture: String, _ loras: [WeightedLoRA]) throws {
        let pipeline = try ZImagePipeline(modelDirectory: Fixtures.tinyModel, backend: backend)
        try pipeline.useLoRAs(loras)
        var parameters = GenerationParameters(prompt: "a red fox in the snow")
        (parameters.width, parameters.height, parameters.seed) = (64, 64, 42)
        let image = try pipeline.generate(parameters)[0].image
        let golden = try SafetensorsFile(path: Fixtures.path("stages/\(fixture).safetensors"))
        let expected = try golden.tensor("image_uint8", on: backend).toBytes()
        let differences = zip(image.pixels, expected).map { abs(Int($0) - Int($1)) }
        #expect(differences.count == expected.count)
        #expect((differences.max() ?? 99) <= 2, "\(fixture): a pixel is off by \(differences.max() ?? 99)")
        let within1 = differences.filter { $0 <= 1 }.count
        #expect(Double(within1) / Double(expected.count) >= 0.995, "\(fixture): \(within1) within 1")
        // Back to no LoRA: the base pixels again (merging never touched the base weights).
        try pipeline.useLoRAs([])
        let plain = try pipeline.generate(parameters)[0].image
        let turbo = try SafetensorsFile(path: Fixtures.path("stages/pipeline_turbo.safetensors"))
        let base = try turbo.tensor("image_uint8", on: backend).toBytes()
        #expect((zip(plain.pixels, base).map { abs(Int($0) - Int($1)) }.max() ?? 99) <= 2)
    }

    @Test func imageWithOneLoRAMatchesDiffusers() throws {
        try expectImage("pipeline_lora", [WeightedLoRA(lora("kohya_fused"), strength: 1)])
    }

    @Test func imageWithTwoLoRAsMatchesDiffusers() throws {
        try expectImage("pipeline_lora_two", [WeightedLoRA(lora("kohya"), strength: 0.8),
                                              WeightedLoRA(lora("lokr"), strength: 0.5)])
    }
}

/// Conversion branches no fixture file takes, on small synthetic tensors (expected results read
/// off diffusers 0.42.1's converter): the dot format with Anime-Z's redundant keys, a fused qkv
/// next to split keys, and PEFT metadata alpha.
@Suite struct LoRAConversionBranchTests {
    static func matrix(_ rows: Int, _ columns: Int, _ seed: Float) -> HostMatrix {
        HostMatrix(shape: [rows, columns], values: (0..<(rows * columns)).map { seed + Float($0) / 64 })
    }

    @Test func animeZDotFormatDropsTheRedundantQkvAndOut() throws {
        var tensors: [String: HostMatrix] = [:]
        for (index, name) in ["to.q", "to.k", "to.v", "to_out.0", "qkv", "out"].enumerated() {
            let prefix = "diffusion_model.layers.0.attention.\(name).lora"
            tensors[prefix + ".down.weight"] = Self.matrix(2, 64, Float(index))
            tensors[prefix + ".up.weight"] = Self.matrix(name == "qkv" ? 192 : 64, 2, Float(index) + 0.5)
        }
        let modules = try ZImageLoRAConversion.convert(tensors, file: "animez")
        #expect(Set(modules.keys) == ["layers.0.attention.to_q", "layers.0.attention.to_k", "layers.0.attention.to_v",
                                      "layers.0.attention.to_out.0"])
        #expect(modules["layers.0.attention.to_k"] == .lowRank(down: Self.matrix(2, 64, 1), up: Self.matrix(64, 2, 1.5)))
        #expect(modules["layers.0.attention.to_out.0"] == .lowRank(down: Self.matrix(2, 64, 3), up: Self.matrix(64, 2, 3.5)))
    }

    @Test func fusedQkvIsSplitWithItsAlpha() throws {
        let up = Self.matrix(192, 4, 0)
        let modules = try ZImageLoRAConversion.convert([
            "lora_unet_layers_1_attention_qkv.lora_down.weight": Self.matrix(4, 64, 1),
            "lora_unet_layers_1_attention_qkv.lora_up.weight": up,
            "lora_unet_layers_1_attention_qkv.alpha": HostMatrix(shape: [], values: [1]),
        ], file: "fused")
        // alpha/rank = 0.25 → down × 0.5, up × 0.5 (balanced in powers of two); B cut in thirds.
        for (index, proj) in ["q", "k", "v"].enumerated() {
            let expectedUp = HostMatrix(shape: [64, 4], values: Array(up.values[(index * 256)..<((index + 1) * 256)].map { $0 * 0.5 }))
            #expect(modules["layers.1.attention.to_\(proj)"] == .lowRank(down: Self.matrix(4, 64, 1).scaled(0.5),
                                                                         up: expectedUp))
        }
    }

    @Test func peftMetadataAlphaScales() throws {
        let modules = try ZImageLoRAConversion.convert([
            "transformer.layers.0.feed_forward.w1.lora_A.weight": Self.matrix(4, 64, 1),
            "transformer.layers.0.feed_forward.w1.lora_B.weight": Self.matrix(170, 4, 2),
        ], metadata: ["lora_adapter_metadata": #"{"transformer.r": 4, "transformer.lora_alpha": 8}"#], file: "peft")
        #expect(modules["layers.0.feed_forward.w1"] == .lowRank(down: Self.matrix(4, 64, 1).scaled(2),
                                                                up: Self.matrix(170, 4, 2)))
        #expect(throws: LoRAError.unsupported(file: "dora", detail: "DoRA LoRAs are not supported")) {
            try ZImageLoRAConversion.convert(["transformer.x.lora_A.weight": Self.matrix(1, 1, 0)],
                                             metadata: ["lora_adapter_metadata": #"{"use_dora": true}"#], file: "dora")
        }
        #expect(throws: LoRAError.missingPartner(file: "half", key: "lora_unet_layers_0_attention_to_q.lora_down.weight",
                                                 partner: "layers.0.attention.to.q.lora.up.weight")) {
            try ZImageLoRAConversion.convert(["lora_unet_layers_0_attention_to_q.lora_down.weight": Self.matrix(1, 64, 0)],
                                             file: "half")
        }
    }
}
