import Foundation
import Testing
@testable import ZImageCLI
import ZImagePipeline
import ZImagePlanner
import ZImageTestSupport

/// `generate --memory-mode`: the planner's mode names parse, each maps onto the pipeline's placement
/// through the one mapping plans use (`RunPlanning.placement`), and a streamed run draws the
/// resident run's image.
@Suite(.serialized) struct MemoryModeOptionTests {
    @Test func everyModeParsesAndPlacesAsAPlanInThatModeWould() throws {
        let expected: [(MemoryMode, ComponentPlacement)] = [
            (.resident, ComponentPlacement()),
            (.sequential, ComponentPlacement(textEncoder: .sequential)),
            (.textStreaming, ComponentPlacement(textEncoder: .streamed)),
            (.blockStreaming, ComponentPlacement(textEncoder: .streamed, streamsTransformerBlocks: true)),
        ]
        for (mode, placement) in expected {
            let command = try GenerateCommand.parse(["--prompt", "x", "--memory-mode", mode.rawValue])
            #expect(command.memoryMode == mode)
            #expect(RunPlanning.placement(mode) == placement, "\(mode.rawValue)")
        }
        #expect(throws: (any Error).self) { try GenerateCommand.parse(["--prompt", "x", "--memory-mode", "lowvram"]) }
    }

    func png(_ mode: String) throws -> [UInt8] {
        let output = NSTemporaryDirectory() + "zimage-memory-mode-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: output) }
        var command = try GenerateCommand.parse([
            "--model", Fixtures.tinyModel, "--prompt", "a red fox in the snow", "--seed", "42", "--device", "cpu",
            "--precision", "bf16", "--width", "64", "--height", "64", "--steps", "3", "--output", output,
            "--memory-mode", mode,
        ])
        try command.run()
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: output).first { $0.hasSuffix(".png") })
        return try PNGDecoder.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: output + "/" + file)))).image.pixels
    }

    @Test func aBlockStreamingRunDrawsTheResidentImage() throws {
        let resident = try png("resident")
        #expect(resident.count == 64 * 64 * 3)
        #expect(try png("block-streaming") == resident)
        #expect(try png("text-streaming") == resident)
    }
}
