/// The plan a server's workers run with, as `/api/v1/system` shows it.
public struct PlanSummary: Sendable, Equatable, Codable {
    public var card: String
    public var budgetBytes: Int?
    public var weights: String?
    public var mode: String?
    public var tiledDecode: Bool?
    public var predictedPeakBytes: Int?
    public var predictedSecondsPerImage: Double?
    /// What the engine must do for the chosen plan.
    public var settings: PlanSettings?
    /// The planner's one line.
    public var reason: String
    /// The request the plan was made for ("1024x1024, 8 steps, batch 1").
    public var request: String

    /// The summary of a decision.
    public init(_ decision: PlanDecision) {
        card = decision.card.name
        budgetBytes = decision.budgetBytes
        weights = decision.chosen?.weights.rawValue
        mode = decision.chosen?.mode.rawValue
        tiledDecode = decision.chosen?.tiledDecode
        predictedPeakBytes = decision.chosen?.peakBytes
        predictedSecondsPerImage = decision.chosen?.secondsPerImage
        settings = decision.chosen?.settings
        reason = decision.reason
        let r = decision.request
        request = "\(r.width)x\(r.height), \(r.steps) steps, batch \(r.batch)"
    }

    /// JSON-ready values (snake_case keys).
    public var object: [String: Any] {
        var object: [String: Any] = ["card": card, "reason": reason, "request": request]
        object["budget_bytes"] = budgetBytes
        object["weights"] = weights
        object["mode"] = mode
        object["tiled_decode"] = tiledDecode
        object["predicted_peak_bytes"] = predictedPeakBytes
        object["predicted_seconds_per_image"] = predictedSecondsPerImage
        object["settings"] = settings.map { settings -> [String: Any] in
            ["text_encoder": settings.textEncoder.rawValue, "transformer": settings.transformer.rawValue,
             "weights": settings.weights.rawValue, "quantised_text_encoder": settings.quantisedTextEncoder,
             "text_embedding_on_host": settings.textEmbeddingOnHost, "tiled_decode": settings.tiledDecode]
        }
        return object
    }
}
