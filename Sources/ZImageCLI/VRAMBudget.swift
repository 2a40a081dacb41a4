import ArgumentParser
import Foundation
import ZImageCUDA
import ZImagePipeline
import ZImagePlanner
import ZImageTensor

/// `--vram-budget`: bytes of device memory a run may use ("8GiB", "12G", "8192MiB", "10.5", a
/// number alone in GiB), or `none` (no planning, no check).
public enum VRAMBudget: Equatable, Sendable, ExpressibleByArgument, CustomStringConvertible {
    case bytes(Int)
    case unlimited

    /// Parses a command-line value; nil for one it does not read.
    public init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "none" || text == "off" { self = .unlimited; return }
        let gib = Double(1 << 30), mib = Double(1 << 20)
        let units: [(String, Double)] = [("gib", gib), ("gb", 1e9), ("g", gib), ("mib", mib), ("mb", 1e6), ("m", mib)]
        var number = text, scale = gib
        for (suffix, value) in units where text.hasSuffix(suffix) {
            number = String(text.dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
            scale = value
            break
        }
        guard let value = Double(number), value.isFinite, value > 0, value * scale < 1e15 else { return nil }
        self = .bytes(Int(value * scale))
    }

    public var description: String {
        switch self {
        case .unlimited: "none"
        case .bytes(let bytes): ByteText.gib(bytes)
        }
    }

    /// The option's help, shared by `generate`, `serve` and `advise`.
    static let help = "Device memory a run may use: 8GiB, 12G, 8192MiB (a number alone is GiB), or none. "
        + "The planner picks weights, mode and VAE tiling to stay under it, or refuses before loading, naming what "
        + "would fit (see `zimage advise`). Default: free memory less a margin. Ignored on the CPU."
}

/// The card a backend runs on, as the planner describes it: the built-in entry its name matches,
/// with the driver's memory; an unknown NVIDIA card borrows the speeds of a known one of its generation.
enum DetectedCard {
    /// The card of CUDA device `info`; the note says when its speeds are borrowed.
    static func card(_ info: CUDADeviceInfo) -> (card: Card, note: String?) {
        let capability = "\(info.computeCapability.major).\(info.computeCapability.minor)"
        if case .found(var card) = CardCatalog.match(info.name) {
            card.memoryBytes = info.totalMemory
            card.name = info.name
            return (card, nil)
        }
        let stand: String
        switch (info.computeCapability.major, info.computeCapability.minor) {
        case (8, 0): stand = "A100 80GB"
        case (8, 6), (8, 7): stand = "RTX 3090"
        case (8, 9): stand = "RTX 4090"
        case (9, _): stand = "H100"
        case (10, _), (12, _): stand = "RTX 5090"
        default: stand = "RTX 3060"
        }
        guard case .found(var card) = CardCatalog.match(stand) else {
            return (CardCatalog.cpu(cores: 1, memoryGiB: 1), "no card to compare with")
        }
        card.name = info.name
        card.memoryBytes = info.totalMemory
        card.computeCapability = capability
        return (card, "\(info.name) is not in the built-in list: speeds assumed as for the \(stand)")
    }

    /// This machine's CPU as a card (cores, physical memory).
    static func cpu() -> Card { CardCatalog.hostCPU() }
}

/// Plans a run on `backend` before the weights load: the budget (`--vram-budget`, default free
/// less a margin) and the request in, the plan and its one-line reason out, or a `CLIError` that
/// names what would fit. Nil on the CPU (no device memory) or with `--vram-budget none`.
enum RunPlanning {
    static func decide(backend: any Backend, budget: VRAMBudget?, request: PlanRequest) throws -> PlanDecision? {
        guard budget != .unlimited, let gpu = backend as? CUDABackend else { return nil }
        let (card, note) = DetectedCard.card(gpu.info)
        let bytes: Int
        switch budget {
        case .bytes(let value)?: bytes = value
        default:
            let memory = try gpu.deviceMemory()
            bytes = Planner.defaultBudget(freeBytes: memory.free, totalBytes: memory.total)
        }
        var decision = Planner().decide(request, on: card, budget: bytes)
        if let note { decision.reason += " (\(note))" }
        return decision
    }

    /// The planner's name for a precision's weight storage (fp32/fp16 plan as bf16: the same bytes or fewer).
    static func weights(_ precision: Precision) -> WeightFormat {
        switch precision {
        case .float8: .fp8
        case .int8: .int8
        case .float32, .bfloat16, .float16: .bf16
        }
    }

    /// The precision that runs `plan`'s weights (`current` where they agree, so fp16 stays fp16).
    static func precision(_ plan: Plan, from current: Precision) -> Precision {
        guard weights(current) != plan.weights else { return current }
        switch plan.weights {
        case .bf16: return .bfloat16
        case .fp8: return .float8
        case .int8: return .int8
        }
    }

    /// Where the pipeline puts its weights to follow `plan`.
    static func placement(_ plan: Plan) -> ComponentPlacement { placement(plan.settings) }

    /// Where the pipeline puts its weights to follow `mode` (`--memory-mode`), as a plan in that mode would.
    static func placement(_ mode: MemoryMode) -> ComponentPlacement {
        placement(PlanSettings(mode: mode, weights: .bf16, tiledDecode: false, capabilities: .current))
    }

    /// The pipeline's placement for a plan's settings (the one mapping from the planner's words).
    static func placement(_ settings: PlanSettings) -> ComponentPlacement {
        let textEncoder: ComponentPlacement.TextEncoder
        switch settings.textEncoder {
        case .resident: textEncoder = .resident
        case .sequential: textEncoder = .sequential
        case .streamed: textEncoder = .streamed
        }
        return ComponentPlacement(textEncoder: textEncoder, streamsTransformerBlocks: settings.transformer == .streamed,
                                  embeddingOnHost: settings.textEmbeddingOnHost)
    }

    /// The plan a job follows on a pipeline whose weights were placed for `loaded`: `chosen` when
    /// that placement runs it (a resident text encoder may also leave after encoding: sequential),
    /// else the fastest candidate in a mode it runs within `limit`; nil when none fits.
    static func followable(_ chosen: Plan, among decision: PlanDecision, loadedIn loaded: MemoryMode,
                           limit: Int) -> Plan? {
        func runs(_ mode: MemoryMode) -> Bool {
            switch loaded {
            case .resident, .sequential: mode == .resident || mode == .sequential
            default: mode == loaded
            }
        }
        if runs(chosen.mode) { return chosen }
        return decision.candidates.filter { runs($0.mode) && $0.runnable && $0.weights == chosen.weights && $0.peakBytes <= limit }
            .min { $0.secondsPerImage < $1.secondsPerImage }
    }

    /// The decision's plan, or the refusal.
    static func require(_ decision: PlanDecision) throws -> Plan {
        guard let plan = decision.chosen else { throw CLIError("--vram-budget: refusing to start: \(decision.reason)") }
        return plan
    }
}

/// `--memory-mode` takes the planner's modes by name.
extension MemoryMode: ExpressibleByArgument {}
