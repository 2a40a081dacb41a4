import ArgumentParser
import Foundation
import ZImageCUDA
import ZImagePlanner

/// `zimage advise`: which plan runs on a card (this one, `--card NAME`, or every built-in one with
/// `--all`), its predicted peak device memory and seconds per image, and what a bigger budget buys.
public struct AdviseCommand: ParsableCommand {
    /// The subcommand's name, abstract and help text.
    public static let configuration = CommandConfiguration(
        commandName: "advise",
        abstract: "Say which plan (weights, memory mode, VAE tiling) runs on a GPU, with predicted memory and time.",
        discussion: """
            Predictions come from a cost model: FLOPs and bytes per stage from the model's configuration and the \
            request, the card's datasheet numbers, and efficiencies fitted to our own H200 runs \
            (docs/notes/vram-planner.md). Plans this build cannot run yet (FP8 storage on cards without FP8 \
            tensor cores) are shown apart, as what the card could do. --json adds every plan costed \
            and each plan's settings (text encoder resident/sequential/streamed, transformer resident/streamed, \
            weights, tiled decode).
            """
    )

    @Option(help: "A card by name (lenient: case, spaces, a 12GB suffix, Super/SUPER); default: this machine's first GPU, else its CPU.")
    var card: String?
    @Option(help: "Width in pixels.") var width = 1024
    @Option(help: "Height in pixels.") var height = 1024
    @Option(help: "Images per request.") var batch = 1
    @Option(help: "Denoising steps.") var steps = 8
    @Flag(help: "Classifier-free guidance (two forwards a step).") var cfg = false
    @Option(help: "Plan only this weight format (bf16, fp8, int8; as `generate --precision` fixes one); default: the planner picks.")
    var precision: WeightFormat?
    @Option(help: ArgumentHelp("Device memory to plan for (default: the card's free memory less a margin).", valueName: "bytes"))
    var vramBudget: VRAMBudget?
    @Flag(help: "A table over every built-in card.") var all = false
    @Flag(help: "JSON instead of text.") var json = false

    /// An empty command; ArgumentParser fills in the options.
    public init() {}

    /// Checks the options before `run`.
    public func validate() throws {
        for (name, value) in [("--width", width), ("--height", height)] where !(64...4096).contains(value) || value % 16 != 0 {
            throw ValidationError("\(name) must be a multiple of 16 from 64 to 4096 (got \(value))")
        }
        guard (1...64).contains(batch) else { throw ValidationError("--batch must be 1 to 64") }
        guard (1...200).contains(steps) else { throw ValidationError("--steps must be 1 to 200") }
        if all, card != nil { throw ValidationError("--all and --card exclude each other") }
    }

    var request: PlanRequest {
        PlanRequest(width: width, height: height, batch: batch, steps: steps, guidance: cfg, weights: precision)
    }

    /// Runs the command.
    public func run() throws {
        if all {
            let rows = CardCatalog.cards.map { advice(for: $0, budget: budget(for: $0, free: nil)) }
            print(json ? try Self.json(rows) : Self.table(rows))
            return
        }
        let (card, free, note) = try target()
        let row = advice(for: card, budget: budget(for: card, free: free), note: note)
        if json { print(try Self.json(row)) } else {
            if let note { print("note: \(note)") }
            print(Self.text(row))
        }
    }

    /// The card asked about, the free memory when it is this machine's, and a note on borrowed speeds.
    func target() throws -> (Card, Int?, String?) {
        if let card {
            switch CardCatalog.match(card) {
            case .found(let found): return (found, nil, nil)
            case .unknown(let near):
                throw CLIError("--card: no card named '\(card)' in the built-in list; near ones: "
                    + near.joined(separator: ", ") + " (`zimage advise --all` lists them all)")
            }
        }
        if let info = try? CUDADriver.shared().devices().first {
            let (detected, note) = DetectedCard.card(info)
            // The driver's count alone: a backend would start opening cuBLAS and cuDNN in the
            // background of a process about to exit.
            let free = (try? CUDADriver.shared().memoryInfo(ordinal: info.ordinal))?.free
            return (detected, free, note)
        }
        return (DetectedCard.cpu(), nil, nil)
    }

    func budget(for card: Card, free: Int?) -> Int {
        if case .bytes(let bytes)? = vramBudget { return bytes }
        return HardwareAdvice.defaultBudget(for: card, freeBytes: free)
    }

    /// What this build runs, what every planned mode would, and the faster plans a bigger budget
    /// buys (shared with the server's `/api/v1/hardware`).
    typealias Advice = HardwareAdvice

    func advice(for card: Card, budget: Int, note: String? = nil) -> Advice {
        HardwareAdvice(card: card, request: request, budget: budget, note: note)
    }

    static func text(_ a: Advice) -> String {
        let r = a.thisBuild.request
        var lines = ["\(a.card.name): \(ByteText.gib(a.card.memoryBytes))"
            + (a.card.computeCapability.map { ", compute capability \($0)" } ?? "")
            + ", backend: \(a.card.backend == .none ? "none yet" : a.card.backend.rawValue)",
            "request: \(r.width)x\(r.height), \(r.steps) steps, batch \(r.batch)\(r.guidance ? ", CFG" : ""); "
            + "budget \(ByteText.gib(a.budgetBytes))"]
        if a.cpuOnly { lines.append(a.summary) }
        lines.append("this build: " + describe(a.thisBuild))
        if a.card.backend == .cuda, a.withAllModes.chosen != a.thisBuild.chosen {
            lines.append("with text-encoder streaming, block streaming and int8 (to come): " + describe(a.withAllModes))
        }
        for plan in a.biggerBudget {
            lines.append("  a budget of \(ByteText.gib(plan.peakBytes)) buys \(plan.label): \(plan.timeText)")
        }
        return lines.joined(separator: "\n")
    }

    static func describe(_ d: PlanDecision) -> String {
        guard let plan = d.chosen else { return d.reason }
        return "\(plan.label): peak \(ByteText.gib(plan.peakBytes)), \(plan.timeText)"
    }

    static func table(_ rows: [Advice]) -> String {
        func cell(_ d: PlanDecision) -> String {
            guard let plan = d.chosen else { return d.card.backend == .cuda ? "does not fit" : "-" }
            return "\(plan.label) · \(ByteText.gib(plan.peakBytes)) · " + String(format: "%.2f s", plan.secondsPerImage)
        }
        var lines = ["card | memory | backend | this build | with every planned mode"]
        for row in rows {
            let backend: String
            switch row.card.backend {
            case .cuda: backend = "cuda"
            case .cpu: backend = "cpu"
            case .none: backend = "none yet"
            }
            let cpu = row.card.backend == .cpu ? row.thisBuild.reason.components(separatedBy: "; ").last ?? "" : nil
            lines.append("\(row.card.name) | \(ByteText.gib(row.card.memoryBytes)) | \(backend) | "
                + (cpu ?? cell(row.thisBuild)) + " | " + (cpu ?? cell(row.withAllModes)))
        }
        return lines.joined(separator: "\n")
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try HardwareAdvice.json(value), as: UTF8.self)
    }
}

extension WeightFormat: ExpressibleByArgument {}
