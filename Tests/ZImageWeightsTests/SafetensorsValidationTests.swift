import Foundation
import Testing
import ZImageCPU
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// Every kind of damage in Tests/Fixtures/corrupt (tools/fixtures/make_corrupt_safetensors.py)
/// gives its own typed error, never a crash.
@Suite struct SafetensorsValidationTests {
    func open(_ name: String) -> Result<SafetensorsFile, any Error> {
        Result { try SafetensorsFile(path: Fixtures.path("corrupt/\(name).safetensors")) }
    }

    func error(_ name: String) -> SafetensorsError? {
        guard case .failure(let error) = open(name) else { return nil }
        return error as? SafetensorsError
    }

    @Test func validFileOpens() throws {
        let file = try open("valid").get()
        #expect(file.names == ["a"])
        #expect(file.metadata == ["format": "pt"])
        let info = try #require(file.info("a"))
        #expect(info.dtype == .float32 && info.shape == [2, 3] && info.dataOffsets == 0..<24)
        #expect(try file.tensor("a", on: CPUBackend()).toFloats() == [1, 2, 3, 4, 5, 6])
    }

    @Test func eachCorruptionHasItsOwnError() {
        let path = { (name: String) in Fixtures.path("corrupt/\(name).safetensors") }
        #expect(error("empty") == .truncated(path: path("empty"), fileSize: 0))
        #expect(error("truncated") == .truncated(path: path("truncated"), fileSize: 3))
        #expect(error("header_past_end") == .headerLengthOutOfBounds(path: path("header_past_end"), headerLength: 4096,
                                                                     fileSize: 104))
        #expect(error("header_too_large") == .headerTooLarge(path: path("header_too_large"), headerLength: 1 << 40))
        #expect(error("header_not_utf8") == .headerNotUTF8(path: path("header_not_utf8")))
        #expect(error("unknown_dtype") == .unknownDType(path: path("unknown_dtype"), tensor: "a", dtype: "F13"))
        #expect(error("shape_size_mismatch") == .sizeMismatch(path: path("shape_size_mismatch"), tensor: "a",
                                                              expectedBytes: 24, spanBytes: 20))
        #expect(error("span_out_of_bounds") == .spanOutOfBounds(path: path("span_out_of_bounds"), tensor: "a",
                                                                begin: 0, end: 24, dataSize: 16))
        #expect(error("reversed_span") == .spanOutOfBounds(path: path("reversed_span"), tensor: "a", begin: 24, end: 0,
                                                           dataSize: 24))
        #expect(error("overlapping_spans") == .overlappingSpans(path: path("overlapping_spans"), first: "a", second: "b"))
        for name in ["absurd_shape", "negative_shape", "fractional_shape"] {
            guard case .invalidShape(_, let tensor, _) = error(name) else {
                Issue.record("\(name): expected invalidShape, got \(String(describing: error(name)))")
                continue
            }
            #expect(tensor == "a")
        }
        guard case .malformedJSON = error("bad_json") else { Issue.record("bad_json: \(String(describing: error("bad_json")))"); return }
        guard case .malformedJSON = error("not_an_object") else { Issue.record("not_an_object"); return }
        guard case .malformedEntry(_, "a", _) = error("missing_offsets") else { Issue.record("missing_offsets"); return }
        guard case .invalidMetadata = error("bad_metadata") else { Issue.record("bad_metadata"); return }
    }

    @Test func everyCorruptFixtureFails() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("corrupt"))
            .filter { $0.hasSuffix(".safetensors") && $0 != "valid.safetensors" }
        #expect(names.count >= 16)
        for name in names {
            let result = open(String(name.dropLast(".safetensors".count)))
            if case .success = result { Issue.record("\(name) opened without error") }
        }
    }

    @Test func messagesNameTheProblem() {
        #expect(error("unknown_dtype")?.description.contains("unknown dtype 'F13'") == true)
        #expect(error("overlapping_spans")?.description.contains("overlapping") == true)
        #expect(error("header_past_end")?.description.contains("past the end") == true)
    }

    @Test func missingFileIsAnError() {
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: "/nonexistent/x.safetensors") }
    }

    /// Random byte flips in a valid file's header never crash the reader.
    @Test func fuzzedHeadersNeverCrash() throws {
        let valid = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("corrupt/valid.safetensors")))
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = SystemRandomNumberGenerator()
        var opened = 0
        for trial in 0..<300 {
            var bytes = [UInt8](valid)
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = Int.random(in: 0..<min(bytes.count, 96), using: &generator)
                bytes[position] = UInt8.random(in: 0...255, using: &generator)
            }
            let path = directory + "/\(trial).safetensors"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            if let file = try? SafetensorsFile(path: path) {
                opened += 1
                // Whatever still parses must describe spans inside the file.
                for info in file.tensors { #expect(file.dataStart + info.dataOffsets.upperBound <= bytes.count) }
            }
        }
        #expect(opened < 300)
    }
}

@Suite struct SafetensorsRoundTripTests {
    @Test func writerOutputReadsBack() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/t.safetensors"
        try SafetensorsWriter.write([
            .init(name: "w", values: [1.5, -2, 3.25, 0.1], shape: [2, 2], dtype: .bfloat16),
            .init(name: "b", values: [7, 8, 9], shape: [3]),
            .init(name: "ids", dtype: .int32, shape: [2], bytes: [1, 0, 0, 0, 2, 0, 0, 0]),
        ], metadata: ["k": "v"], to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.dataStart % 8 == 0)
        #expect(file.metadata == ["k": "v"])
        #expect(file.names == ["w", "b", "ids"])
        let backend = CPUBackend()
        #expect(try file.tensor("w", on: backend).toFloats() == [1.5, -2, 3.25, HalfPrecision.roundedToBFloat16(0.1)])
        #expect(try file.tensor("b", on: backend).toFloats() == [7, 8, 9])
        #expect(try file.tensor("w", on: backend, as: .float32).dtype == .float32)
    }

    /// On the CPU an aligned tensor of the stored dtype is the mapped bytes themselves.
    @Test func cpuTensorsBorrowTheMapping() throws {
        let file = try SafetensorsFile(path: Fixtures.path("tiny-zimage/vae/diffusion_pytorch_model.safetensors"))
        let name = try #require(file.names.first)
        let tensor = try file.tensor(name, on: CPUBackend())
        let bytes = try file.bytes(of: name)
        #expect(tensor.address == UInt(bitPattern: bytes.baseAddress))
    }
}
