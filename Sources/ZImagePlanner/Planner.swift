import Foundation

/// How the components use device memory.
public enum MemoryMode: String, Sendable, Codable, CaseIterable {
    /// Text encoder, transformer and VAE all resident (fastest).
    case resident
    /// Sequential components: the text encoder runs, then is freed (its memory back to the driver)
    /// before the transformer denoises and the VAE decodes; embeddings are cached per prompt, so a
    /// repeated prompt costs nothing more, a new one a reload of the encoder.
    case sequential
    /// Never two big components at once: the transformer also leaves the device (parked in pinned
    /// host memory) while the text encoder runs.
    case swapped
    /// Transformer blocks streamed from pinned host memory, double-buffered on a copy stream.
    case blockStreaming = "block-streaming"
}

/// What the engine of this build can follow; the planner never promises a plan it cannot run.
public struct EngineCapabilities: Sendable, Equatable, Codable {
    public var sequentialComponents: Bool
    /// Whether the transformer can leave the device while the text encoder runs (`swapped`).
    public var componentSwapping = false
    public var blockStreaming: Bool
    /// Whether FP8 layers drop their dense bf16 weights (else both stay resident).
    public var fp8WithoutDenseCopy: Bool
    /// Whether FP8 weights can be stored on cards without FP8 tensor cores (widened before each GEMM).
    public var fp8StorageWithoutFP8Cores: Bool

    public init(sequentialComponents: Bool, componentSwapping: Bool = false, blockStreaming: Bool,
                fp8WithoutDenseCopy: Bool, fp8StorageWithoutFP8Cores: Bool) {
        self.sequentialComponents = sequentialComponents
        self.componentSwapping = componentSwapping
        self.blockStreaming = blockStreaming
        self.fp8WithoutDenseCopy = fp8WithoutDenseCopy
        self.fp8StorageWithoutFP8Cores = fp8StorageWithoutFP8Cores
    }

    /// This build: resident and sequential plans and tiled decode; FP8 holds its projections once (a
    /// LoRA re-reads the dense weights to merge). Swapping and block streaming are planned (for
    /// `zimage advise`) but refused.
    public static let current = EngineCapabilities(sequentialComponents: true, blockStreaming: false,
                                                   fp8WithoutDenseCopy: true, fp8StorageWithoutFP8Cores: false)
    /// The engine the H200 calibration runs were made with (FP8 kept the dense copies then).
    public static let calibrationRuns = EngineCapabilities(sequentialComponents: false, blockStreaming: false,
                                                           fp8WithoutDenseCopy: false, fp8StorageWithoutFP8Cores: false)
    /// Everything the planner knows how to cost (what `advise` shows as the card's potential).
    public static let all = EngineCapabilities(sequentialComponents: true, componentSwapping: true, blockStreaming: true,
                                               fp8WithoutDenseCopy: true, fp8StorageWithoutFP8Cores: false)
}

/// What is asked for.
public struct PlanRequest: Sendable, Equatable, Codable {
    public var width = 1024, height = 1024, batch = 1, steps = 8
    /// Classifier-free guidance doubles the forwards.
    public var guidance = false
    /// Real prompt tokens with the template (the caption length).
    public var promptTokens = 100
    /// The weight formats allowed (`--precision` fixes one; nil lets the planner pick).
    public var weights: WeightFormat?

    public init(width: Int = 1024, height: Int = 1024, batch: Int = 1, steps: Int = 8, guidance: Bool = false,
                promptTokens: Int = 100, weights: WeightFormat? = nil) {
        (self.width, self.height, self.batch, self.steps) = (width, height, batch, steps)
        self.guidance = guidance
        self.promptTokens = promptTokens
        self.weights = weights
    }
}

/// One way to run a request, with its predicted cost.
public struct Plan: Sendable, Equatable, Codable {
    public var weights: WeightFormat
    public var mode: MemoryMode
    public var tiledDecode: Bool
    /// Predicted process peak of device memory (what nvidia-smi shows), bytes.
    public var peakBytes: Int
    /// Predicted seconds per image (after the first: kernels compiled, prompt embedded once).
    public var secondsPerImage: Double
    /// Predicted seconds per image when the prompt is new each time (sequential re-uploads).
    public var secondsPerImageNewPrompt: Double
    /// Whether this build's engine can run it (else `missing` says what it lacks).
    public var runnable: Bool
    public var missing: [String]

    /// "bf16, resident, tiled VAE decode".
    public var label: String {
        "\(weights.rawValue), \(mode.rawValue)" + (tiledDecode ? ", tiled VAE decode" : ", full VAE decode")
    }
}

/// The planner's answer: the plan chosen within the budget (nil when none fits), why, and the others.
public struct PlanDecision: Sendable, Equatable, Codable {
    public var card: Card
    public var request: PlanRequest
    public var budgetBytes: Int?
    public var chosen: Plan?
    /// One line: what was chosen and why, or why nothing was.
    public var reason: String
    /// Every plan costed, fastest first.
    public var candidates: [Plan]
}

/// Why a run is refused before it starts.
public struct PlanningError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Chooses a plan: given the card, the request and a budget, the fastest plan whose predicted peak
/// stays under the budget — bf16 first, FP8 only when no bf16 plan without block streaming fits
/// (FP8 costs image quality: PSNR ≈ 34 dB against bf16), block streaming only when nothing else does.
public struct Planner: Sendable {
    public var model: ModelShape
    public var efficiencies: Efficiencies
    public var capabilities: EngineCapabilities

    public init(model: ModelShape = .zImageTurbo, calibration: Calibration = .h200,
                capabilities: EngineCapabilities = .current) {
        self.model = model
        self.efficiencies = calibration.efficiencies(model)
        self.capabilities = capabilities
    }

    /// The default budget on a card with `free` bytes free of `total`: free less a margin of
    /// max(512 MiB, 2 % of total) for the driver and other processes' growth.
    public static func defaultBudget(freeBytes: Int, totalBytes: Int) -> Int {
        max(freeBytes - max(512 << 20, totalBytes / 50), 0)
    }

    /// Every plan for `request` on `card`, costed.
    public func candidates(_ request: PlanRequest, on card: Card) -> [Plan] {
        guard card.backend == .cuda else { return [] }
        var plans: [Plan] = []
        let formats = request.weights.map { [$0] } ?? WeightFormat.allCases
        for format in formats {
            for mode in MemoryMode.allCases {
                for tiled in [false, true] {
                    plans.append(cost(format, mode, tiled: tiled, request, card))
                }
            }
        }
        return plans.sorted { ($0.secondsPerImage, $0.peakBytes) < ($1.secondsPerImage, $1.peakBytes) }
    }

    /// The decision for `request` on `card` within `budget` bytes (nil: the card's whole memory).
    public func decide(_ request: PlanRequest, on card: Card, budget: Int?) -> PlanDecision {
        // A budget beyond the card is the card.
        let budget = budget.map { min($0, card.memoryBytes) }
        let limit = budget ?? card.memoryBytes
        let all = candidates(request, on: card)
        var decision = PlanDecision(card: card, request: request, budgetBytes: budget, chosen: nil, reason: "",
                                    candidates: all)
        switch card.backend {
        case .none:
            decision.reason = "\(card.name): \(card.note ?? "no zimage backend for this device yet"); nothing predicted"
            return decision
        case .cpu:
            decision.reason = "\(card.name): the CPU backend runs from memory-mapped weights (no device memory to plan); "
                + String(format: "about %.0f s per image", cpuSeconds(request, card))
            return decision
        case .cuda: break
        }
        // Ranked by the cost with a new prompt each time: resident before sequential at equal speed.
        let fits = all.filter { $0.peakBytes <= limit }
            .sorted { ($0.secondsPerImageNewPrompt, $0.peakBytes) < ($1.secondsPerImageNewPrompt, $1.peakBytes) }
        let runnable = fits.filter(\.runnable)
        // Quality first: bf16 without streaming, then FP8 without streaming, then streaming.
        func preferred(_ plans: [Plan]) -> Plan? {
            plans.first { $0.weights == .bf16 && $0.mode != .blockStreaming }
                ?? plans.first { $0.mode != .blockStreaming } ?? plans.first
        }
        let budgetText = ByteText.gib(limit) + (budget == nil ? " (the whole card)" : " budget")
        if let plan = preferred(runnable) {
            decision.chosen = plan
            decision.reason = "\(plan.label): predicted peak \(ByteText.gib(plan.peakBytes)) within \(budgetText), "
                + String(format: "%.2f s per image", plan.secondsPerImage) + why(plan, among: all, limit: limit)
        } else if let plan = preferred(fits) {
            decision.reason = "the plan that fits \(budgetText) (\(plan.label), peak \(ByteText.gib(plan.peakBytes))) needs "
                + plan.missing.joined(separator: " and ") + ", which this build does not have yet"
                + (smallestRunnable(all).map { "; the smallest plan this build runs needs \(ByteText.gib($0.peakBytes)) (\($0.label))" } ?? "")
                + (largestFittingSize(request, card: card, limit: limit).map { "; \($0) fits" } ?? "")
        } else {
            let smallest = all.min { $0.peakBytes < $1.peakBytes }
            decision.reason = "nothing fits \(budgetText) at \(request.width)x\(request.height): "
                + (smallest.map { "the smallest plan (\($0.label)) needs \(ByteText.gib($0.peakBytes))" } ?? "no plan")
                + (largestFittingSize(request, card: card, limit: limit).map { "; \($0) fits" } ?? "")
        }
        return decision
    }

    /// The decision, or a `PlanningError` with the decision's reason when nothing runnable fits.
    public func plan(_ request: PlanRequest, on card: Card, budget: Int?) throws -> (plan: Plan, reason: String) {
        let decision = decide(request, on: card, budget: budget)
        guard let plan = decision.chosen else { throw PlanningError("refusing to start: \(decision.reason)") }
        return (plan, decision.reason)
    }

    private func smallestRunnable(_ plans: [Plan]) -> Plan? {
        plans.filter(\.runnable).min { $0.peakBytes < $1.peakBytes }
    }

    /// "; resident bf16 would need 27.7 GiB" when a faster plan was left out for the budget.
    private func why(_ plan: Plan, among all: [Plan], limit: Int) -> String {
        if let faster = all.first(where: { $0.runnable && $0.secondsPerImage < plan.secondsPerImage * 0.98 && $0.peakBytes > limit }) {
            return "; \(faster.label) would take " + String(format: "%.2f s", faster.secondsPerImage)
                + " with \(ByteText.gib(faster.peakBytes))"
        }
        if plan.weights == .bf16, all.contains(where: { $0.runnable && $0.weights == .fp8 && $0.secondsPerImage < plan.secondsPerImage && $0.peakBytes <= limit }) {
            return "; bf16 kept for quality (--precision fp8 is faster)"
        }
        return ""
    }

    /// The largest square size (multiple of 64, below the request) some runnable plan fits, as "768x768".
    private func largestFittingSize(_ request: PlanRequest, card: Card, limit: Int) -> String? {
        var side = (min(request.width, request.height) - 64) / 64 * 64
        while side >= 256 {
            var smaller = request
            (smaller.width, smaller.height) = (side, side)
            if candidates(smaller, on: card).contains(where: { $0.runnable && $0.peakBytes <= limit }) {
                return "\(side)x\(side)"
            }
            side -= 64
        }
        return nil
    }

    /// Seconds per image on the CPU backend (every stage at the calibrated per-core rate).
    func cpuSeconds(_ request: PlanRequest, _ card: Card) -> Double {
        let f = model.transformerFLOPs(width: request.width, height: request.height, captionTokens: request.promptTokens)
        let forwards = Double(request.steps * (request.guidance ? 2 : 1))
        let flops = forwards * (f.imageLinear + f.attention + f.other)
            + model.vaeDecodeFLOPs(width: request.width, height: request.height)
            + model.textEncoderFLOPs(tokens: request.promptTokens)
        return flops / card.bf16FLOPS
    }
}
