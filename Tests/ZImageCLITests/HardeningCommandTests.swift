import ArgumentParser
import Foundation
import Testing
import ZImagePipeline
@testable import ZImageCLI

/// Issue 8.8 and 15.8: every file and flag case of the command line.
@Suite struct CommandLineFlagTests {
    @Test func seedMinusOneParsesAndMeansRandom() throws {
        let command = try GenerateCommand.parse(["--prompt", "x", "--seed", "-1"])
        #expect(command.seed == -1)
        #expect(try GenerateCommand.parse(["--prompt", "x", "--seed=-1"]).seed == -1)
        #expect(try GenerateCommand.parse(["--prompt", "x", "--seed", "9223372036854775807"]).seed == Int64.max)
        #expect(throws: (any Error).self) { try GenerateCommand.parse(["--prompt", "x", "--seed", "-2"]) }
        #expect(throws: (any Error).self) { try GenerateCommand.parse(["--prompt", "x", "--seed", "9223372036854775808"]) }
    }

    @Test func threadsOutOfRangeAreRefusedNotTrapped() {
        for value in ["2147483648", "0", "-1", "1025", "99999999999999999999"] {
            #expect(throws: (any Error).self, "\(value)") { try GenerateCommand.parse(["--prompt", "x", "--threads", value]) }
            #expect(throws: (any Error).self, "\(value)") { try ServeCommand.parse(["--threads", value]) }
        }
        do {
            _ = try GenerateCommand.parse(["--prompt", "x", "--threads", "2147483648"])
        } catch {
            #expect(GenerateCommand.message(for: error).contains("--threads must be 1 to 1024"))
        }
    }

    @Test func sharedModelOptionsParseTheirTypes() throws {
        let generate = try GenerateCommand.parse(["--prompt", "x", "--device", "cuda:2", "--precision", "bf16", "--threads", "4"])
        #expect(generate.modelOptions.device == .cuda(2))
        #expect(generate.modelOptions.precision == .fixed(.bfloat16))
        #expect(generate.modelOptions.threads == 4)
        let serve = try ServeCommand.parse(["--device", "cpu", "--precision", "auto"])
        #expect(serve.modelOptions.device == .cpu && serve.modelOptions.precision == .auto)
        for (flag, value) in [("--device", "tpu"), ("--device", "cuda:x"), ("--device", "cuda:-1"), ("--precision", "fp64")] {
            #expect(throws: (any Error).self, "\(flag) \(value)") { try GenerateCommand.parse(["--prompt", "x", flag, value]) }
            #expect(throws: (any Error).self, "\(flag) \(value)") { try ServeCommand.parse([flag, value]) }
        }
    }

    @Test func textEncoderPrecisionParsesAndRefusesWhatItCannotBe() throws {
        let generate = try GenerateCommand.parse(["--prompt", "x", "--precision", "int8", "--text-encoder-precision", "bf16"])
        #expect(generate.modelOptions.precision == .fixed(.int8))
        #expect(generate.modelOptions.textEncoderPrecision == .bfloat16)
        #expect(try GenerateCommand.parse(["--prompt", "x"]).modelOptions.textEncoderPrecision == nil)
        for value in ["fp32", "fp16", "int4"] {
            #expect(throws: (any Error).self, "\(value)") {
                try GenerateCommand.parse(["--prompt", "x", "--text-encoder-precision", value])
            }
        }
        // A bf16-family encoder with an fp32 run: refused before anything loads.
        let options = try GenerateCommand.parse(["--prompt", "x", "--precision", "fp32", "--text-encoder-precision", "int8"])
            .modelOptions
        #expect(throws: CLIError.self) { try options.checkedTextEncoderPrecision(for: .float32) }
        #expect(try options.checkedTextEncoderPrecision(for: .float8) == .int8)
    }

    @Test func generationFlagsAreCheckedWithTheirOwnNames() {
        let cases: [([String], String)] = [
            (["--width", "1000"], "--width 1000 is not a multiple of 16"), (["--steps", "0"], "--steps 0 is outside 1...100"),
            (["--batch", "65"], "--batch 65 is outside 1...64"), (["--guidance", "31"], "--guidance 31.0 is outside 0...30"),
            (["--height", "9999999999999"], "--height 9999999999999 is outside 64...4096"),
        ]
        for (flags, message) in cases {
            do {
                _ = try GenerateCommand.parse(["--prompt", "x"] + flags)
                Issue.record("\(flags) accepted")
            } catch {
                #expect(GenerateCommand.message(for: error).contains(message), "\(flags): \(GenerateCommand.message(for: error))")
            }
        }
    }

    @Test func serveRefusesAnEmptyKeyAndBadSettings() {
        for flags in [["--api-key", ""], ["--api-key", " "], ["--public-url", "nonsense"], ["--idle-timeout", "0"],
                      ["--max-connections", "0"], ["--port", "70000"], ["--max-queue", "0"]] {
            #expect(throws: (any Error).self, "\(flags)") { try ServeCommand.parse(flags) }
        }
        #expect((try? ServeCommand.parse(["--api-key", "k3y", "--public-url", "https://x.example"])) != nil)
    }

    @Test func oneVersionString() {
        #expect(ZImageCommand.configuration.version == ZImagePipeline.version)
        #expect(ZImagePipeline.version.hasPrefix("zimage "))
    }
}

@Suite struct CommandLineFileTests {
    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "zimage-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A copy of the tiny model's index and configs (no weights) whose model_index.json is replaced by `make`.
    static func model(_ make: (String) throws -> Void) throws -> String {
        let folder = try temporaryFolder()
        try make(folder + "/model_index.json")
        return folder
    }

    static func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func inspectRefusesAFIFOWithoutHanging() throws {
        let fifo = try Self.temporaryFolder() + "/pipe.safetensors"
        #expect(mkfifo(fifo, 0o600) == 0)
        let text = Self.message { _ = try InspectCommand.report(path: fifo) }
        #expect(text.contains("is a FIFO"), "\(text)")
        let device = Self.message { _ = try InspectCommand.report(path: "/dev/zero") }
        #expect(device.contains("is a device"), "\(device)")
    }

    @Test func badModelIndexFilesSayWhatIsWrong() throws {
        let cases: [(String, (String) throws -> Void, String)] = [
            ("fifo", { path in _ = mkfifo(path, 0o600) }, "is a FIFO"),
            ("directory", { path in try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) },
             "is a directory"),
            ("link loop", { path in
                try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: path + ".b")
                try FileManager.default.createSymbolicLink(atPath: path + ".b", withDestinationPath: path)
            }, "loop of symbolic links"),
            ("dev zero", { path in try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/zero") },
             "is a device"),
            ("missing", { _ in }, "has no model_index.json"),
            ("not json", { path in try Data("nope".utf8).write(to: URL(fileURLWithPath: path)) }, "is not a JSON object"),
            ("traversal", { path in
                try Data(#"{"_class_name": "ZImagePipeline", "../../etc": ["diffusers", "X"]}"#.utf8)
                    .write(to: URL(fileURLWithPath: path))
            }, "component names must be plain folder names"),
            ("absolute", { path in
                try Data(#"{"_class_name": "ZImagePipeline", "/etc": ["diffusers", "X"]}"#.utf8).write(to: URL(fileURLWithPath: path))
            }, "component names must be plain folder names"),
        ]
        for (label, make, expected) in cases {
            let folder = try Self.model(make)
            let inspect = Self.message { _ = try InspectCommand.report(path: folder) }
            #expect(inspect.contains(expected), "\(label): \(inspect)")
            var generate = "no error"
            do { _ = try GenerateCommand.parse(["--prompt", "x", "--model", folder]) } catch {
                generate = GenerateCommand.message(for: error)
            }
            #expect(generate.contains(expected), "\(label): \(generate)")
        }
    }

    @Test func aFIFOInsideAComponentIsRefused() throws {
        let folder = try Self.model { path in
            try Data(#"{"_class_name": "ZImagePipeline", "vae": ["diffusers", "AutoencoderKL"]}"#.utf8)
                .write(to: URL(fileURLWithPath: path))
        }
        try FileManager.default.createDirectory(atPath: folder + "/vae", withIntermediateDirectories: true)
        #expect(mkfifo(folder + "/vae/config.json", 0o600) == 0)
        let text = Self.message { try ModelFolderCheck.check(folder) }
        #expect(text.contains("vae/config.json is a FIFO"), "\(text)")
    }

    @Test func unwritableOutputAndDataFoldersGiveAPlainSentence() async throws {
        let file = try Self.temporaryFolder() + "/a-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let output = Self.message { try WritableFolder.ensure(file + "/images", flag: "--output") }
        #expect(output.hasPrefix("--output \(file)/images: cannot create"), "\(output)")
        #expect(output.contains("Not a directory") && !output.contains("NSCocoaErrorDomain"), "\(output)")
        let notFolder = Self.message { try WritableFolder.ensure(file, flag: "--output") }
        #expect(notFolder == "--output \(file) is not a folder")
        var generate = try GenerateCommand.parse(["--prompt", "x", "--output", file + "/images", "--device", "cpu"])
        let generated = Self.message { try generate.run() }
        #expect(generated.hasPrefix("--output"), "\(generated)")
        generate = try GenerateCommand.parse(["--prompt", "x"])
        var serve = try ServeCommand.parse(["--data-dir", file + "/data", "--device", "cpu"])
        do {
            try await serve.run()
            Issue.record("serve ran with an unwritable --data-dir")
        } catch {
            #expect("\(error)".hasPrefix("--data-dir \(file)/data: cannot create"), "\(error)")
        }
        serve = try ServeCommand.parse([])
        #expect(serve.serverOptions.apiKey == nil)
    }
}
