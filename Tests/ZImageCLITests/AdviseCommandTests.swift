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
        // 24 GiB: resident needs 26.89 GiB (25.39 in use with the pool's cache given back); resident
        // with a tiled decode (21.46 GiB, +0.129 s of overlap an image) is faster with a new prompt
        // than text streaming with a full decode (20.31 GiB, +0.283 s of copies): see theGuidesSevenCards.
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

    /// `zimage advise --json --card NAME` for the guide's seven cards at their default budget (the
    /// card's memory less max(512 MiB, 2 %)): plan, predicted peak and seconds, settings. Expected
    /// numbers by hand from the cost model (docs/notes/vram-planner.md; 1024², 8 steps, 100 tokens).
    /// This build runs every mode the planner costs but FP8 storage on cards without FP8 tensor
    /// cores, so on these cards it chooses what `with_all_modes` does.
    @Test func theGuidesSevenCards() throws {
        struct Expected {
            var card: String
            var thisBuild: String?
            /// Label, peak GiB, seconds per image (repeated prompt), with a new prompt each time.
            var potential: (label: String, peak: Double, seconds: Double, newPrompt: Double)?
        }
        let cases = [
            // The streamed modes hold the encoder's slots (0.376 GiB) and the caption refiner (0.659)
            // only while the prompt is encoded, then the pool's cache keeps them; a plan over its
            // budget by no more than the pool's cache runs held at the limit when what is in use
            // (with the 0.375 margin) fits.
            // 11.5 GiB: nothing bf16 fits without streaming (text streaming needs 20.31 GiB, 14.88
            // tiled: in use 18.47 and 12.79); no FP8 cores. bf16 block streaming: 0.514 + 0.645 +
            // 1.357 − 0.659 + 0.156 + 6.028 on the cache 1.5 and the text stage's 0.659 = 10.20 GiB;
            // compute-bound (25.6 TFLOP/s × 0.616: 3.58 s a forward against 0.46 s of copies).
            Expected(card: "RTX 3060 12GB", thisBuild: "bf16, block-streaming, full VAE decode",
                     potential: ("bf16, block-streaming, full VAE decode", 10.20, 30.107, 30.390)),
            // 9.5 GiB: the full decode's 10.20 GiB is over by 0.70 GiB, all cache; in use 8.416 fits: held at
            // 9.5 GiB, and it saves the tiles' overlap, 1.25 × 10.44 TFLOP / (0.294 × 59.5 TFLOP/s) =
            // 0.746 s an image, on the tiled plan's 13.712 (13.995 with a new prompt): 12.966, 13.249 s.
            Expected(card: "RTX 3080 10GB", thisBuild: "bf16, block-streaming, full VAE decode",
                     potential: ("bf16, block-streaming, full VAE decode", 9.5, 12.966, 13.249)),
            Expected(card: "RTX 4070 Ti", thisBuild: "bf16, block-streaming, full VAE decode",
                     potential: ("bf16, block-streaming, full VAE decode", 10.20, 9.625, 9.908)),
            // 15.5 GiB: bf16 text streaming tiled fits (14.88 GiB;
            // FP8 plans fit too, but bf16 comes first for quality), yet bf16 block streaming with a
            // full decode fits, costs no time on this card and streams the encoder just as text
            // streaming does, without the tiles' overlap.
            Expected(card: "RTX 4080 SUPER", thisBuild: "bf16, block-streaming, full VAE decode",
                     potential: ("bf16, block-streaming, full VAE decode", 10.20, 7.399, 7.682)),
            // 23.5 GiB: resident needs 26.89 GiB (in use 25.39); resident with a tiled decode fits (the
            // embedding on the host: 0.514 + 0.645 + 18.200 + 0.590 + 1.5 = 21.46 GiB) and its 1.60×
            // decode costs 0.60 × 10.44 TFLOP / (0.294 × 165.2 TFLOP/s) = 0.129 s an image: 4.684 +
            // 0.129 = 4.813 s, 4.837 with a new prompt (the encoder resident, 0.024 s). Text streaming
            // with a full decode (20.31 GiB) is faster with a repeated prompt (4.684 s) but pays the new
            // prompt's copies, 7.065 GB / 25 GB/s = 0.283 s: 4.966 s.
            Expected(card: "RTX 4090", thisBuild: "bf16, resident, tiled VAE decode",
                     potential: ("bf16, resident, tiled VAE decode", 21.464, 4.813, 4.837)),
            Expected(card: "RX 7700 XT", thisBuild: nil, potential: nil),
            Expected(card: "Apple M2 Max", thisBuild: nil, potential: nil),
        ]
        let gib = Double(1 << 30)
        for expected in cases {
            let command = try AdviseCommand.parse(["--json", "--card", expected.card])
            let (card, free, _) = try command.target()
            let json = try AdviseCommand.json(command.advice(for: card, budget: command.budget(for: card, free: free)))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            let budget = try #require(object["budget_bytes"] as? Int)
            let thisBuild = try #require(object["this_build"] as? [String: Any])
            let potential = try #require(object["with_all_modes"] as? [String: Any])
            let summary = try #require(object["summary"] as? String)
            guard card.backend == .cuda else {
                // No backend: said plainly, nothing predicted.
                #expect(summary.contains("has no zimage backend"), "\(summary)")
                #expect(thisBuild["chosen"] == nil && (thisBuild["candidates"] as? [Any])?.isEmpty == true)
                if expected.potential != nil { Issue.record("\(expected.card) has no backend: nothing to expect") }
                continue
            }
            #expect(budget == card.memoryBytes - max(512 << 20, card.memoryBytes / 50))
            let chosen = thisBuild["chosen"] as? [String: Any]
            if let label = expected.thisBuild {
                let plan = try #require(chosen, "\(expected.card): \(thisBuild["reason"] ?? "")")
                #expect(Self.label(plan) == label, "\(expected.card)")
                #expect(summary.hasPrefix("this build runs \(label)"), "\(summary)")
            } else {
                #expect(chosen == nil, "\(expected.card): \(String(describing: chosen))")
                #expect(summary.contains("cannot run this request"), "\(summary)")
            }
            let want = try #require(expected.potential)
            let plan = try #require(potential["chosen"] as? [String: Any], "\(expected.card): \(potential["reason"] ?? "")")
            #expect(Self.label(plan) == want.label, "\(expected.card)")
            let peak = Double(try #require(plan["peak_bytes"] as? Int)) / gib
            #expect(abs(peak - want.peak) < 0.01, "\(expected.card): \(peak) GiB")
            #expect(peak * gib <= Double(budget))
            let seconds = try #require(plan["seconds_per_image"] as? Double)
            let newPrompt = try #require(plan["seconds_per_image_new_prompt"] as? Double)
            #expect(abs(seconds - want.seconds) / want.seconds < 0.002, "\(expected.card): \(seconds) s")
            #expect(abs(newPrompt - want.newPrompt) / want.newPrompt < 0.002, "\(expected.card): \(newPrompt) s")
            let settings = try #require(plan["settings"] as? [String: Any])
            #expect(settings["weights"] as? String == "bf16"
                && settings["text_encoder"] as? String == (want.label.contains("resident") ? "resident" : "streamed"))
            #expect(settings["transformer"] as? String == (want.label.contains("block") ? "streamed" : "resident"))
            #expect(settings["tiled_decode"] as? Bool == want.label.contains("tiled"))
        }
    }

    @Test func theTextSaysWhatTheCPUDoes() throws {
        let command = try AdviseCommand.parse(["--card", "CPU"])
        let (card, free, _) = try command.target()
        let text = AdviseCommand.text(command.advice(for: card, budget: command.budget(for: card, free: free)))
        #expect(text.contains("CPU only") && text.contains("s per image"), "\(text)")
    }

    static func label(_ plan: [String: Any]) -> String {
        "\(plan["weights"] as? String ?? "?"), \(plan["mode"] as? String ?? "?"), "
            + ((plan["tiled_decode"] as? Bool ?? false) ? "tiled VAE decode" : "full VAE decode")
    }
}
