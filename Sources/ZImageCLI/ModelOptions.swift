import Foundation
import ArgumentParser
import ZImageCPU
import ZImageCUDA
import ZImagePipeline
import ZImageTensor

/// Where a generation runs: `cpu`, `cuda` (the first GPU), `cuda:N`, or `auto` (the first GPU
/// when CUDA is there, else the CPU).
public enum DeviceChoice: Equatable, Sendable, ExpressibleByArgument, CustomStringConvertible {
    case auto, cpu, cuda(Int)

    /// Parses a command-line value; nil for one it does not know.
    public init?(argument: String) {
        switch argument {
        case "auto": self = .auto
        case "cpu": self = .cpu
        case "cuda": self = .cuda(0)
        case let value where value.hasPrefix("cuda:"):
            guard let ordinal = Int(value.dropFirst(5)), (0...1023).contains(ordinal) else { return nil }
            self = .cuda(ordinal)
        default: return nil
        }
    }

    /// The value as it is written on the command line or in a message.
    public var description: String {
        switch self {
        case .auto: "auto"
        case .cpu: "cpu"
        case .cuda(let ordinal): "cuda:\(ordinal)"
        }
    }

    /// The values `--help` lists.
    public static var allValueStrings: [String] { ["cpu", "cuda", "cuda:N", "auto"] }

    /// The backend for this choice; `threads` sizes the CPU backend.
    public func backend(threads: Int?) throws -> any Backend {
        switch self {
        case .cpu: return CPUBackend(threads: threads)
        case .auto:
            if let gpu = try? CUDABackend(ordinal: 0) { return gpu }
            return CPUBackend(threads: threads)
        case .cuda(let ordinal): return try CUDABackend(ordinal: ordinal)
        }
    }
}

extension Precision: ExpressibleByArgument {}

/// `--precision`: a fixed precision, or `auto` (fp32 on the CPU, bf16 on a GPU).
public enum PrecisionChoice: Equatable, Sendable, ExpressibleByArgument, CustomStringConvertible {
    case auto, fixed(Precision)

    /// Parses a command-line value; nil for one it does not know.
    public init?(argument: String) {
        if argument == "auto" { self = .auto } else if let precision = Precision(rawValue: argument) { self = .fixed(precision) } else { return nil }
    }

    /// The value as it is written on the command line or in a message.
    public var description: String {
        switch self {
        case .auto: "auto"
        case .fixed(let precision): precision.rawValue
        }
    }

    /// The values `--help` lists.
    public static var allValueStrings: [String] { Precision.allCases.map(\.rawValue) + ["auto"] }

    /// The precision on `backend`: the fixed one, or fp32 on the CPU and bf16 on a GPU.
    public func resolved(on backend: any Backend) -> Precision {
        switch self {
        case .auto: backend.device == .cpu ? .float32 : .bfloat16
        case .fixed(let precision): precision
        }
    }
}

/// The options every command that loads a model shares: which model, on which device, at which
/// precision, with how many CPU threads.
public struct ModelOptions: ParsableArguments {
    @Option(help: "Model directory (diffusers layout of Tongyi-MAI/Z-Image-Turbo), a folder of ComfyUI files, or a repository id in the Hugging Face cache (see `zimage pull`). Default: the demo model.")
    public var model: String?

    /// `--transformer/--text-encoder/--vae/--tokenizer` (ComfyUI's separate files).
    @OptionGroup var split: SplitFileOptions

    @Option(help: "cpu, cuda, cuda:N or auto.")
    public var device: DeviceChoice = .auto

    @Option(help: "fp32, bf16, fp16, fp8 or int8 (fp8 and int8: bf16 with the DiT's and the text encoder's projections quantised per output channel); auto is fp32 on the CPU and bf16 on a GPU.")
    public var precision: PrecisionChoice = .auto

    @Option(name: .customLong("text-encoder-precision"),
            help: "bf16, fp8 or int8: how the text encoder's projections are stored (default: as --precision; bf16 keeps the encoder unquantised).")
    public var textEncoderPrecision: Precision?

    @Option(help: "CPU threads, 1 to \(Self.maxThreads) (default: all cores).")
    public var threads: Int?

    /// Whether no model is named (the tiny demo model runs): the planner, which knows
    /// Z-Image-Turbo's shapes, has nothing to plan then.
    var usesDemoModel: Bool { model == nil && !split.isUsed }

    /// More CPU threads than this are refused (OpenBLAS takes a 32-bit count).
    public static let maxThreads = 1024

    /// An empty command; ArgumentParser fills in the options.
    public init() {}

    /// Checks the options before `run` (ArgumentParser calls it first).
    public func validate() throws {
        if let threads, !(1...Self.maxThreads).contains(threads) {
            throw ValidationError("--threads must be 1 to \(Self.maxThreads) (got \(threads))")
        }
        if let textEncoderPrecision, !Precision.textEncoderChoices.contains(textEncoderPrecision) {
            throw ValidationError("--text-encoder-precision must be bf16, fp8 or int8 (got \(textEncoderPrecision.rawValue))")
        }
        // A local path is checked before anything opens it (FIFOs, links, bad model_index.json); a
        // folder without model_index.json may hold ComfyUI files and a repository id is resolved
        // through the Hugging Face cache, both by ModelSource.
        if let model, FileKind(model) != .missing {
            let index = (model as NSString).appendingPathComponent("model_index.json")
            let comfyUIFolder = FileKind(model) == .directory && FileKind(index) == .missing && Self.holdsWeightFiles(model)
            if !comfyUIFolder { try ModelFolderCheck.check(model) }
        }
    }

    /// Whether `folder` or a folder inside it holds a `.safetensors` file (a ComfyUI `models/` folder).
    static func holdsWeightFiles(_ folder: String) -> Bool {
        let manager = FileManager.default
        for name in (try? manager.contentsOfDirectory(atPath: folder)) ?? [] {
            if name.hasSuffix(".safetensors") { return true }
            let inner = (folder as NSString).appendingPathComponent(name)
            guard FileKind(inner) == .directory else { continue }
            if ((try? manager.contentsOfDirectory(atPath: inner)) ?? []).contains(where: { $0.hasSuffix(".safetensors") }) {
                return true
            }
        }
        return false
    }

    /// The pipeline the flags name (a diffusers folder, a cached repository, ComfyUI files, or the
    /// demo model when none is given, which `note` says), with its backend and precision.
    func pipeline(note: (String) -> Void) throws
        -> (pipeline: ZImagePipeline, backend: any Backend, precision: Precision, isDemo: Bool) {
        try pipeline(on: device, threads: threads, note: note)
    }

    /// The same on a given device with a given CPU thread count (`zimage serve --devices`).
    func pipeline(on device: DeviceChoice, threads: Int?, note: (String) -> Void) throws
        -> (pipeline: ZImagePipeline, backend: any Backend, precision: Precision, isDemo: Bool) {
        let backend = try device.backend(threads: threads)
        return try pipeline(backend: backend, precision: self.precision.resolved(on: backend), note: note)
    }

    /// The pipeline the flags name on an open backend at a given precision (after planning).
    func pipeline(backend: any Backend, precision: Precision, placement: ComponentPlacement = .resident,
                  note: (String) -> Void) throws
        -> (pipeline: ZImagePipeline, backend: any Backend, precision: Precision, isDemo: Bool) {
        let textEncoderPrecision = try checkedTextEncoderPrecision(for: precision)
        if let named = try ModelSource.pipeline(model: model, split: split, backend: backend, precision: precision,
                                                textEncoderPrecision: textEncoderPrecision, placement: placement) {
            return (named, backend, precision, false)
        }
        let directory = try DemoModel.ensure()
        note("using the demo model (random weights: abstract images); --model DIR selects real weights")
        return (try ZImagePipeline(modelDirectory: directory, backend: backend, precision: precision,
                                   textEncoderPrecision: textEncoderPrecision, placement: placement), backend, precision,
                true)
    }

    /// `--text-encoder-precision` checked against the precision the run resolved to (the encoder
    /// computes in that precision's dtype), or nil when not given.
    func checkedTextEncoderPrecision(for precision: Precision) throws -> Precision? {
        guard let textEncoderPrecision else { return nil }
        do {
            _ = try precision.textEncoderLinearFormat(textEncoderPrecision)
        } catch {
            throw CLIError("--text-encoder-precision \(textEncoderPrecision.rawValue) needs --precision bf16, fp8 or int8 "
                           + "(the run is \(precision.rawValue))")
        }
        return textEncoderPrecision
    }
}
