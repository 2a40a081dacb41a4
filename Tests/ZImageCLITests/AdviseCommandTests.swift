import Foundation
import Testing
@testable import ZImageCLI
import ZImagePlanner

/// `--vram-budget` values and `zimage advise` on named cards (no GPU needed).
@Suite struct AdviseCommandTests {
    @Test func budgetsParseWithUnits() {
        #expect(VRAMBudget(argument: "8GiB") == .bytes(8 << 30))
        #expect(VRAMBudget(argument: "12G") == .bytes(12 << 30))
        #expect(VRAMBudget(argument: "16 gb") == .bytes(16_000_000_000))
        #expect(VRAMBudget(argument: "8192MiB") == .bytes(8 << 30))
        #expect(VRAMBudget(argument: "10.5") == .bytes(Int(10.5 * Double(1 << 30))))
        #expect(VRAMBudget(argument: "none") == .unlimited)
        for bad in ["", "abc", "-1", "0", "8TB", "nan", "inf", "1e30"] {
            #expect(VRAMBudget(argument: bad) == nil, "\(bad)")
        }
    }

    @Test func adviceForANamedCardIsAPlanWithPredictions() throws {
        let command = try AdviseCommand.parse(["--card", "RTX 4090", "--vram-budget", "30GiB"])
        let (card, free, _) = try command.target()
        #expect(card.name == "NVIDIA GeForce RTX 4090 24GB" && free == nil)
        let advice = command.advice(for: card, budget: command.budget(for: card, free: free))
        let plan = try #require(advice.thisBuild.chosen)
        // A budget above the card's memory is the card's memory.
        #expect(advice.thisBuild.budgetBytes == 24 << 30)
        #expect(plan.peakBytes <= 24 << 30 && plan.tiledDecode)
        let json = try AdviseCommand.json(advice)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let chosen = try #require((object["this_build"] as? [String: Any])?["chosen"] as? [String: Any])
        #expect(chosen["weights"] as? String == "bf16" && chosen["mode"] as? String == "resident")
        #expect((chosen["peak_bytes"] as? Int ?? .max) <= 24 << 30)
        #expect((chosen["seconds_per_image"] as? Double ?? 0) > 1)
        #expect(AdviseCommand.text(advice).contains("this build: bf16, resident, tiled VAE decode"))
    }

    @Test func anUnknownCardListsTheNearOnes() throws {
        let command = try AdviseCommand.parse(["--card", "RTX 4080"])
        do {
            _ = try command.target()
            Issue.record("RTX 4080 is not in the built-in list")
        } catch {
            #expect("\(error)".contains("no card named 'RTX 4080'") && "\(error)".contains("RTX 4080 SUPER"), "\(error)")
        }
    }

    @Test func theTableCoversEveryCardAndSaysWhichHaveNoBackend() throws {
        let command = try AdviseCommand.parse(["--all"])
        let table = AdviseCommand.table(CardCatalog.cards.map { command.advice(for: $0, budget: command.budget(for: $0, free: nil)) })
        #expect(table.split(separator: "\n").count == CardCatalog.cards.count + 1)
        #expect(table.contains("AMD Radeon RX 7700 XT 12GB | 12.0 GiB | none yet"))
        #expect(throws: (any Error).self) { try AdviseCommand.parse(["--width", "1000"]) }
        #expect(throws: (any Error).self) { try AdviseCommand.parse(["--all", "--card", "4090"]) }
    }
}
