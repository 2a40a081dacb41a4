import Foundation

/// The planner's view of one card for one request: what this build runs, what every planned mode
/// would, and the faster plans a bigger budget buys. `zimage advise` prints it and the server's
/// `GET /api/v1/hardware` serves it: one computation for both.
public struct HardwareAdvice: Sendable, Codable, Equatable {
    public var card: Card
    /// How the card was found (speeds borrowed from a known card, a CPU-only machine), if worth saying.
    public var note: String?
    /// The budget planned for (bytes; a budget beyond the card is the card).
    public var budgetBytes: Int
    /// The decision with this build's engine (`EngineCapabilities.current`): every plan in
    /// `candidates`, `runnable` and `missing` saying which this build runs.
    public var thisBuild: PlanDecision
    /// The decision with every mode the planner costs (`EngineCapabilities.all`): the card's potential.
    public var withAllModes: PlanDecision
    /// Runnable plans that need more than the budget, the smallest step up first, each faster (with
    /// a new prompt each time, by 2 % or more) than the chosen one and every smaller step (at most three).
    public var biggerBudget: [Plan]
    /// Whether the machine has no GPU zimage can use, only the CPU backend.
    public var cpuOnly: Bool
    /// One line in plain words: the plan and its prediction, the refusal, or what the CPU does.
    public var summary: String

    /// The advice for `request` on `card` within `budget` bytes.
    public init(card: Card, request: PlanRequest, budget: Int, note: String? = nil, model: ModelShape = .zImageTurbo,
                calibration: Calibration = .h200) {
        let now = Planner(model: model, calibration: calibration, capabilities: .current).decide(request, on: card, budget: budget)
        let later = Planner(model: model, calibration: calibration, capabilities: .all).decide(request, on: card, budget: budget)
        let chosen = now.chosen?.secondsPerImageNewPrompt ?? .infinity
        // The steps up, smallest first, each faster than every smaller one (no plan that a cheaper one beats).
        var bigger: [Plan] = []
        var best = chosen * 0.98
        for plan in now.candidates.filter({ $0.runnable && $0.peakBytes > budget })
            .sorted(by: { ($0.peakBytes, $0.secondsPerImageNewPrompt) < ($1.peakBytes, $1.secondsPerImageNewPrompt) })
        where plan.secondsPerImageNewPrompt < best {
            bigger.append(plan)
            best = plan.secondsPerImageNewPrompt * 0.98
        }
        self.card = card
        self.note = note
        budgetBytes = now.budgetBytes ?? budget
        thisBuild = now
        withAllModes = later
        biggerBudget = Array(bigger.prefix(3))
        cpuOnly = card.backend == .cpu
        switch card.backend {
        case .cpu:
            let seconds = Planner(model: model, calibration: calibration).cpuSeconds(request, card)
            summary = "CPU only: no CUDA GPU found, so zimage runs on the CPU backend (fp32 compute, weights "
                + "memory-mapped from the files; no device memory to plan): "
                + String(format: "about %.0f s per image at %dx%d", seconds, request.width, request.height)
        case .none:
            summary = "\(card.name) has no zimage backend: \(card.note ?? "CUDA only"); nothing is predicted"
        case .cuda:
            if let plan = now.chosen {
                summary = "this build runs \(plan.label): predicted peak \(ByteText.gib(plan.peakBytes)) of "
                    + "\(ByteText.gib(budgetBytes)), \(plan.timeText)"
            } else {
                summary = "this build cannot run this request within \(ByteText.gib(budgetBytes)): \(now.reason)"
            }
        }
    }

    /// The default budget for `card`: its free memory (nil: all of it) less the planner's margin.
    public static func defaultBudget(for card: Card, freeBytes: Int?) -> Int {
        Planner.defaultBudget(freeBytes: freeBytes ?? card.memoryBytes, totalBytes: card.memoryBytes)
    }

    /// Snake-case JSON, keys sorted (what `advise --json` prints and `/api/v1/hardware` serves).
    public static func json<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(value)
    }
}

extension CardCatalog {
    /// This machine's CPU as a card (its cores and physical memory).
    public static func hostCPU() -> Card {
        cpu(cores: ProcessInfo.processInfo.activeProcessorCount,
            memoryGiB: Double(ProcessInfo.processInfo.physicalMemory) / Double(1 << 30))
    }
}
