import Foundation
import Hummingbird
import ZImagePlanner
import ZImageTensor

/// The machine a server runs on, as the planner sees it (`ServerOptions.hardware`).
public struct HardwareDescription: Sendable, Equatable {
    /// The card detected (the built-in entry its name matches, with the driver's memory), or the CPU.
    public var card: Card
    /// How it was found, when worth saying ("speeds assumed as for the RTX 4090").
    public var note: String?
    /// The budget this server plans jobs with (`serve --vram-budget`); nil: the card's default.
    public var budgetBytes: Int?
    /// Free device memory when the server started (before the weights loaded), for the default budget.
    public var freeBytesAtStart: Int?

    /// A description of `card`.
    public init(card: Card, note: String? = nil, budgetBytes: Int? = nil, freeBytesAtStart: Int? = nil) {
        self.card = card
        self.note = note
        self.budgetBytes = budgetBytes
        self.freeBytesAtStart = freeBytesAtStart
    }

    /// This machine's CPU (a server without a GPU, and the default when `zimage serve` said nothing).
    public static func hostCPU() -> HardwareDescription {
        HardwareDescription(card: CardCatalog.hostCPU())
    }
}

/// `GET /api/v1/hardware`: the planner's view of this machine for the default request (1024²,
/// 8 steps, batch 1) — the card, the plan chosen and why, every plan with its predicted peak and
/// seconds and whether this build runs it, the budget, what a bigger budget buys, and NVML's live
/// readings when there is a monitor. The same `HardwareAdvice` that `zimage advise --json` prints.
struct HardwareAPI: Sendable {
    let hardware: HardwareDescription
    /// Live GPU readings (NVML), when the server has a monitor.
    var gpuStatistics: (@Sendable () -> [GPUStatistics])?

    /// The request the panel plans for.
    static let defaultRequest = PlanRequest()

    func register(on router: Router<ZImageRequestContext>) {
        router.group("api/v1").get("hardware") { _, _ in
            Response.json(try self.object())
        }
    }

    /// The advice as a JSON object, with the request, the server's budget source and the readings.
    func object() throws -> [String: Any] {
        let card = hardware.card
        let budget = hardware.budgetBytes ?? HardwareAdvice.defaultBudget(for: card, freeBytes: hardware.freeBytesAtStart)
        let advice = HardwareAdvice(card: card, request: Self.defaultRequest, budget: budget, note: hardware.note)
        let data = try HardwareAdvice.json(advice)
        guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw APIError(.internalServerError, code: "hardware", message: "the planner's advice is not a JSON object")
        }
        let r = Self.defaultRequest
        object["request"] = ["width": r.width, "height": r.height, "steps": r.steps, "batch": r.batch,
                             "text": "\(r.width)x\(r.height), \(r.steps) steps, batch \(r.batch)"] as [String: Any]
        object["budget_source"] = hardware.budgetBytes != nil ? "server" : "default"
        let gpus = gpuStatistics?() ?? []
        object["gpus"] = gpus.isEmpty ? NSNull() : gpus.map(\.object) as Any
        return object
    }
}
