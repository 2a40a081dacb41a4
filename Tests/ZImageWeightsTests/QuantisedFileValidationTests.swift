import Foundation
import Testing
import ZImageCPU
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// Damaged GGUF files and mismatched quantised safetensors (Tests/Fixtures/corrupt/*.gguf and
/// corrupt/quantised/, written by tools/fixtures/make_corrupt_quantised.py): each is its own typed
/// error naming the file (and the key or tensor), never a crash (issue 11 item 3).
@Suite struct QuantisedFileValidationTests {
    func path(_ name: String) -> String { Fixtures.path("corrupt/\(name)") }

    func ggufError(_ name: String) -> GGUFError? {
        do {
            _ = try WeightSet(path: path(name + ".gguf"))
            return nil
        } catch { return error as? GGUFError }
    }

    func quantError(_ name: String) -> WeightLoadingError? {
        do {
            _ = try WeightSet(path: path("quantised/\(name).safetensors"))
            return nil
        } catch { return error as? WeightLoadingError }
    }

    @Test func validGGUFReadsAndDequantises() throws {
        let weights = try WeightSet(path: path("valid.gguf"))
        #expect(weights.keys == ["a", "b"])
        #expect(weights.shards.first?.container == "GGUF")
        #expect(weights.shards.first?.metadata["general.architecture"] == "lumina2")
        #expect(weights.entries["a"]?.shape == [2, 4])   // ne [4, 2] reversed
        #expect(weights.entries["b"]?.encoding == .ggmlQ8_0)
        let backend = CPUBackend()
        #expect(try weights.tensor("a", on: backend).toFloats() == (0..<8).map(Float.init))
        #expect(try weights.tensor("b", on: backend).toFloats() == (0..<32).map { Float($0) * 0.5 })
        #expect(try weights.tensor("b", on: backend, as: .bfloat16).dtype == .bfloat16)
    }

    @Test func eachGGUFCorruptionHasItsOwnError() {
        let p = { (name: String) in self.path(name + ".gguf") }
        #expect(ggufError("bad_magic") == .badMagic(path: p("bad_magic")))
        #expect(ggufError("bad_version") == .unsupportedVersion(path: p("bad_version"), version: 0x0300_0000))
        guard case .truncated = ggufError("truncated_header") else { Issue.record("truncated_header"); return }
        guard case .spanOutOfBounds(_, "b", _) = ggufError("truncated_data") else { Issue.record("truncated_data"); return }
        guard case .truncated = ggufError("huge_tensor_count") else { Issue.record("huge_tensor_count"); return }
        guard case .truncated = ggufError("huge_string") else { Issue.record("huge_string"); return }
        guard case .spanOutOfBounds(_, "a", let unaligned) = ggufError("unaligned_offset"),
              unaligned.contains("alignment") else { Issue.record("unaligned_offset"); return }
        guard case .spanOutOfBounds(_, "a", _) = ggufError("offset_past_end") else { Issue.record("offset_past_end"); return }
        guard case .spanOutOfBounds(_, "a", _) = ggufError("offset_overflow") else { Issue.record("offset_overflow"); return }
        #expect(ggufError("overlapping_tensors") == .overlappingSpans(path: p("overlapping_tensors"), first: "a", second: "b"))
        #expect(ggufError("unsupported_type") == .unsupportedType(path: p("unsupported_type"), tensor: "a", type: "Q4_K"))
        #expect(ggufError("unknown_type") == .unsupportedType(path: p("unknown_type"), tensor: "a", type: "id 99 (unknown)"))
        guard case .invalidShape(_, "a", _) = ggufError("absurd_dims") else { Issue.record("absurd_dims"); return }
        guard case .invalidShape(_, "a", _) = ggufError("too_many_dims") else { Issue.record("too_many_dims"); return }
        guard case .invalidShape(_, "a", _) = ggufError("q8_partial_block") else { Issue.record("q8_partial_block"); return }
        guard case .malformedHeader(_, "general.alignment", _) = ggufError("bad_alignment") else {
            Issue.record("bad_alignment"); return
        }
        guard case .malformedHeader(_, "general.name", _) = ggufError("bad_value_type") else {
            Issue.record("bad_value_type"); return
        }
    }

    @Test func everyCorruptGGUFFails() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("corrupt"))
            .filter { $0.hasSuffix(".gguf") && $0 != "valid.gguf" }
        #expect(names.count >= 17)
        for name in names {
            do {
                _ = try WeightSet(path: path(name))
                Issue.record("\(name) opened without error")
            } catch let error as GGUFError {
                #expect(error.description.contains(name), "\(error)")
            }
        }
    }

    @Test func mismatchedQuantisedSafetensorsNameFileAndKey() throws {
        let p = { (name: String) in self.path("quantised/\(name).safetensors") }
        guard case .quantization(p("quant_scale_wrong_count"), "l.scale_weight", _) = quantError("quant_scale_wrong_count")
        else { Issue.record("quant_scale_wrong_count"); return }
        guard case .quantization(p("quant_scale_wrong_dtype"), "l.scale_weight", _) = quantError("quant_scale_wrong_dtype")
        else { Issue.record("quant_scale_wrong_dtype"); return }
        #expect(quantError("quant_comfy_nvfp4") == .unsupportedQuantization(path: p("quant_comfy_nvfp4"), key: "l.weight",
                                                                           format: "comfy_quant nvfp4"))
        guard case .quantization(p("quant_comfy_bad_json"), "l.comfy_quant", _) = quantError("quant_comfy_bad_json")
        else { Issue.record("quant_comfy_bad_json"); return }
        guard case .quantization(p("quant_comfy_not_fp8"), "l.weight", _) = quantError("quant_comfy_not_fp8")
        else { Issue.record("quant_comfy_not_fp8"); return }
        guard case .quantization(p("quant_metadata_not_json"), "_quantization_metadata", _) = quantError("quant_metadata_not_json")
        else { Issue.record("quant_metadata_not_json"); return }
        #expect(quantError("quant_comfy_nvfp4")?.description.contains("nvfp4") == true)
    }

    /// Random byte flips and cuts of a valid GGUF file: an error or a file, never a crash.
    @Test func fuzzedGGUFNeverCrashes() throws {
        let valid = try Data(contentsOf: URL(fileURLWithPath: path("valid.gguf")))
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var random = SplitMix64(seed: 11)
        for round in 0..<300 {
            var bytes = [UInt8](valid)
            if round % 3 == 0 {
                bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count))))
            } else {
                for _ in 0..<(1 + Int(random.next() % 4)) {
                    let at = Int(random.next() % UInt64(bytes.count))
                    bytes[at] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            let file = folder + "/fuzz.gguf"
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            if let weights = try? WeightSet(path: file), let shard = weights.shards.first {
                for info in shard.tensors { #expect(shard.dataStart + info.dataOffsets.upperBound <= bytes.count) }
                for key in weights.keys { _ = try? weights.tensor(key, on: CPUBackend()) }
            }
        }
    }
}
