import Foundation

/// What is asked for.
public struct PlanRequest: Sendable, Equatable, Codable {
    public var width = 1024, height = 1024, batch = 1, steps = 8
    /// Classifier-free guidance doubles the forwards.
    public var guidance = false
    /// Real prompt tokens with the template (the caption length).
    public var promptTokens = 100
    /// The weight formats allowed (`--precision` fixes one; nil lets the planner pick).
    public var weights: WeightFormat?
    /// Bytes of the transformer weights the request's LoRAs change, as bf16 (`LoRAMerge.changedBytes`;
    /// 0: no LoRAs). A resident transformer keeps merged copies beside its own weights; a rebuilt
    /// one (text or block streaming) is built beside the old one (`Planner.stageMemory`).
    public var loraBytes = 0

    public init(width: Int = 1024, height: Int = 1024, batch: Int = 1, steps: Int = 8, guidance: Bool = false,
                promptTokens: Int = 100, weights: WeightFormat? = nil, loraBytes: Int = 0) {
        (self.width, self.height, self.batch, self.steps) = (width, height, batch, steps)
        self.guidance = guidance
        self.promptTokens = promptTokens
        self.weights = weights
        self.loraBytes = max(loraBytes, 0)
    }
}

/// One way to run a request, with its predicted cost.
public struct Plan: Sendable, Equatable, Codable {
    public var weights: WeightFormat
    public var mode: MemoryMode
    public var tiledDecode: Bool
    /// What the engine must do to run it (placements, weights, tiling).
    public var settings: PlanSettings
    /// Predicted process peak of device memory (what nvidia-smi shows), bytes.
    public var peakBytes: Int
    /// Predicted peak when the pool gives every cached block back (the tensors in use and the
    /// context): what a budget must hold, with the pool's margin, for the run to keep to it.
    public var minimumBytes: Int
    /// Predicted seconds per image with a repeated prompt (kernels compiled, the caption features
    /// from the prompt cache: no text encoder).
    public var secondsPerImage: Double
    /// Predicted seconds per image when each request has a new prompt: the text encoder's time
    /// (with its reload or streaming) shared by the request's images.
    public var secondsPerImageNewPrompt: Double
    /// Whether this build's engine can run it (else `missing` says what it lacks).
    public var runnable: Bool
    public var missing: [String]
    /// Seconds a process's first image pays once on top (cuDNN and cuBLASLt plans made, the kernel
    /// module loaded): a one-image `generate` takes `secondsPerImageNewPrompt` plus this.
    public var firstImageOverheadSeconds = 0.0

    /// This plan under a budget of `limit` bytes: when its peak passes the limit only by the pool's
    /// cache (freed blocks kept for reuse), the pool gives that cache back before it would pass the
    /// limit (`CUDAMemoryPool.limitBytes`), so the run holds at most the limit; what it cannot give
    /// back (`minimumBytes`: tensors in use and the context, with the margin the pool keeps for
    /// libraries) must fit.
    func kept(under limit: Int, marginBytes: Int) -> Plan {
        var plan = self
        if peakBytes > limit, minimumBytes + marginBytes <= limit { plan.peakBytes = limit }
        return plan
    }

    /// "0.79 s per image" and, when a new prompt costs more, "(1.09 s with a new prompt each time)".
    public var timeText: String {
        String(format: "%.2f s per image", secondsPerImage)
            + (secondsPerImageNewPrompt > secondsPerImage * 1.02
                ? String(format: " (%.2f s with a new prompt each time)", secondsPerImageNewPrompt) : "")
    }

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
    /// Every plan costed, fastest first (with a new prompt each time).
    public var candidates: [Plan]
}

/// Why a run is refused before it starts.
public struct PlanningError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Chooses a plan: given the card, the request and a budget, the plan whose predicted peak stays
/// under the budget, quality first — every bf16 plan before any int8 one, every int8 plan before any
/// FP8 one (`qualityOrder`) — and among one weight format the fastest with a new prompt each time
/// (so resident comes before sequential and text streaming at equal speed, and block streaming
/// only where it is as fast or nothing else of that format fits).
///
/// int8 ranks above FP8: it holds the same bytes, but only its weights are quantised (8-bit
/// integers on a per-row scale, steps of 2⁻⁷ of the row's largest weight; e4m3 keeps 3 mantissa
/// bits, ≈ 2⁻⁴ relative) and the activations stay bf16, where FP8 also quantises each token's
/// activations (PSNR ≈ 35 dB against bf16). It is slower than bf16 (a widening pass per GEMM) and
/// than FP8, so it is chosen only where bf16 does not fit; `--precision fp8` asks for speed.
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
        return plans.sorted(by: Self.faster)
    }

    /// The margin the pool's limit leaves under a budget for the libraries' later workspaces
    /// (`Backend.limitDeviceMemory`'s default).
    public static let poolLimitMarginBytes = 384 << 20

    /// `plans` as they run under `limit` (see `Plan.kept(under:…)`).
    func budgeted(_ plans: [Plan], limit: Int) -> [Plan] {
        plans.map { $0.kept(under: limit, marginBytes: Self.poolLimitMarginBytes) }
    }

    /// The decision for `request` on `card` within `budget` bytes (nil: the card's whole memory).
    public func decide(_ request: PlanRequest, on card: Card, budget: Int?) -> PlanDecision {
        // A budget beyond the card is the card.
        let budget = budget.map { min($0, card.memoryBytes) }
        let limit = budget ?? card.memoryBytes
        let all = budgeted(candidates(request, on: card), limit: limit)
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
        // Ranked by the cost with a new prompt each time: resident before sequential and
        // text streaming at equal speed.
        let fits = all.filter { $0.peakBytes <= limit }.sorted(by: Self.faster)
        let runnable = fits.filter(\.runnable)
        func preferred(_ plans: [Plan]) -> Plan? { Self.preferred(plans) }
        let budgetText = ByteText.gib(limit) + (budget == nil ? " (the whole card)" : " budget")
        if let plan = preferred(runnable) {
            decision.chosen = plan
            decision.reason = "\(plan.label): predicted peak \(ByteText.gib(plan.peakBytes)) within \(budgetText), "
                + plan.timeText + why(plan, among: all, limit: limit)
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

    /// The ranking: faster with a new prompt each time first; at equal speed the simpler mode
    /// (resident, sequential, text streaming, block streaming: fewer copies to go wrong), then the smaller peak.
    static func faster(_ a: Plan, _ b: Plan) -> Bool {
        (a.secondsPerImageNewPrompt, a.mode.rank, a.secondsPerImage, a.peakBytes)
            < (b.secondsPerImageNewPrompt, b.mode.rank, b.secondsPerImage, b.peakBytes)
    }

    /// The order of weight formats by image quality, best first (see the type's comment).
    public static let qualityOrder: [WeightFormat] = [.bf16, .int8, .fp8]

    /// The plan chosen among `plans` (ranked fastest first): the fastest of the best weight format
    /// that has one.
    static func preferred(_ plans: [Plan]) -> Plan? {
        for format in qualityOrder {
            if let plan = plans.first(where: { $0.weights == format }) { return plan }
        }
        return plans.first
    }

    /// "; bf16, resident, full VAE decode would take 0.79 s with 27.6 GiB" when a faster plan of the
    /// same weights was left out for the budget, and "; bf16 kept for quality (--precision fp8 is
    /// faster)" when another format would be faster within it.
    private func why(_ plan: Plan, among all: [Plan], limit: Int) -> String {
        let chosen = plan.secondsPerImageNewPrompt
        var text = ""
        if let faster = all.filter({ $0.runnable && $0.weights == plan.weights && $0.peakBytes > limit
            && $0.secondsPerImageNewPrompt < chosen * 0.98 }).min(by: { $0.peakBytes < $1.peakBytes }) {
            text += "; \(faster.label) would take " + String(format: "%.2f s", faster.secondsPerImageNewPrompt)
                + " with \(ByteText.gib(faster.peakBytes))"
        }
        if let faster = all.filter({ $0.runnable && $0.weights != plan.weights && $0.peakBytes <= limit
            && $0.secondsPerImageNewPrompt < chosen }).min(by: { $0.secondsPerImageNewPrompt < $1.secondsPerImageNewPrompt }) {
            text += "; \(plan.weights.rawValue) kept for quality (--precision \(faster.weights.rawValue) is faster)"
        }
        return text
    }

    /// The largest square size (multiple of 64, below the request) some runnable plan fits, as "768x768".
    private func largestFittingSize(_ request: PlanRequest, card: Card, limit: Int) -> String? {
        var side = (min(request.width, request.height) - 64) / 64 * 64
        while side >= 256 {
            var smaller = request
            (smaller.width, smaller.height) = (side, side)
            if budgeted(candidates(smaller, on: card), limit: limit).contains(where: { $0.runnable && $0.peakBytes <= limit }) {
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
