import Foundation
import HummingbirdTesting
import Testing
import ZImagePlanner
import ZImageTensor
@testable import ZImageServer

/// `GET /api/v1/hardware`: the planner's view of the machine, the same advice `zimage advise --json` prints.
@Suite struct HardwareAPITests {
    @Test func onTheCPUItSaysCPUOnlyAndWhatTheCPUDoes() async throws {
        // No hardware given (what CI's CPU server has): this machine's CPU.
        let app = try buildApplication(options(), engine: StubEngine())
        try await app.test(.router) { client in
            let response = try await client.get("/api/v1/hardware")
            #expect(response.status == .ok)
            let hardware = response.json
            #expect(hardware["cpu_only"] as? Bool == true)
            let card = try #require(hardware["card"] as? [String: Any])
            #expect(card["backend"] as? String == "cpu")
            #expect((card["name"] as? String)?.hasPrefix("CPU only (\(ProcessInfo.processInfo.activeProcessorCount) cores)") == true)
            let summary = try #require(hardware["summary"] as? String)
            #expect(summary.hasPrefix("CPU only: no CUDA GPU found"), "\(summary)")
            #expect(summary.contains("s per image"), "the CPU plan's time: \(summary)")
            let thisBuild = try #require(hardware["this_build"] as? [String: Any])
            #expect(thisBuild["chosen"] == nil)
            #expect((thisBuild["candidates"] as? [Any])?.isEmpty == true)
            #expect((thisBuild["reason"] as? String)?.contains("the CPU backend runs from memory-mapped weights") == true)
            let request = try #require(hardware["request"] as? [String: Any])
            #expect(request["width"] as? Int == 1024 && request["height"] as? Int == 1024 && request["batch"] as? Int == 1)
            #expect(hardware["gpus"] is NSNull)
            #expect(hardware["budget_source"] as? String == "default")
        }
    }

    @Test func onAGPUItListsEveryPlanTheChoiceAndTheReadings() async throws {
        var settings = options()
        let rtx4090 = try #require(CardCatalog.cards.first { $0.name.contains("4090") })
        settings.hardware = HardwareDescription(card: rtx4090, budgetBytes: 20 << 30)
        settings.gpuStatistics = {
            var gpu = GPUStatistics(index: 0, name: "NVIDIA GeForce RTX 4090")
            (gpu.memoryUsedBytes, gpu.memoryTotalBytes, gpu.utilizationPercent) = (3 << 30, 24 << 30, 12)
            return [gpu]
        }
        let app = try buildApplication(settings, engine: GPUStubEngine())
        try await app.test(.router) { client in
            let hardware = try await client.get("/api/v1/hardware").json
            #expect(hardware["cpu_only"] as? Bool == false)
            #expect(hardware["budget_bytes"] as? Int == 20 << 30 && hardware["budget_source"] as? String == "server")
            let thisBuild = try #require(hardware["this_build"] as? [String: Any])
            // 20 GiB: bf16 resident needs 26.89 GiB (21.46 tiled: 20.01 in use with the pool's cache
            // given back, + the 0.375 margin: over); text streaming with a full decode runs held at the
            // limit, its encoder's slots and the caption refiner on the device only while the prompt is
            // encoded: 0.514 + 0.645 + 11.464 − 0.659 + 0.156 + 6.028 + the cache's 1.5 + 0.659 = 20.31
            // GiB costed, 18.47 in use. It is as fast as resident with a repeated prompt
            // (4.68 s) and ties block streaming (9.54 GiB; the forward compute-bound on this card,
            // 0.56 s against 11.58 GB / 25 GB/s = 0.46 s of copies), winning as the simpler; quality
            // keeps it over FP8.
            let candidates = try #require(thisBuild["candidates"] as? [[String: Any]])
            #expect(candidates.count == WeightFormat.allCases.count * MemoryMode.allCases.count * 2)
            #expect(candidates.allSatisfy { $0["peak_bytes"] is Int && $0["seconds_per_image"] is Double && $0["runnable"] is Bool })
            // This build streams, and the 4090 has FP8 tensor cores: every plan runs.
            #expect(candidates.allSatisfy { $0["runnable"] as? Bool == true })
            let chosen = try #require(thisBuild["chosen"] as? [String: Any], "\(thisBuild["reason"] ?? "")")
            #expect(chosen["weights"] as? String == "bf16" && chosen["mode"] as? String == "text-streaming")
            #expect(chosen["tiled_decode"] as? Bool == false)
            let chosenPeak = Double(try #require(chosen["peak_bytes"] as? Int)) / Double(1 << 30)
            #expect(chosenPeak == 20, "\(chosenPeak) GiB: held at the limit")
            let chosenSettings = try #require(chosen["settings"] as? [String: Any])
            #expect(chosenSettings["text_encoder"] as? String == "streamed" && chosenSettings["transformer"] as? String == "resident")
            #expect(chosenSettings["tiled_decode"] as? Bool == false && chosenSettings["quantised_text_encoder"] as? Bool == false)
            // What a bigger budget buys, faster with a new prompt (the encoder resident: 0.024 s against
            // 0.283 s of streamed copies): bf16 resident tiled (21.46 GiB, its overlap 0.129 s an image)
            // and with a full decode (26.89 GiB); sequential (its reload) is not.
            let bigger = try #require(hardware["bigger_budget"] as? [[String: Any]])
            let chosenSeconds = try #require(chosen["seconds_per_image_new_prompt"] as? Double)
            #expect(bigger.allSatisfy { ($0["peak_bytes"] as? Int ?? 0) > 20 << 30
                && ($0["seconds_per_image_new_prompt"] as? Double ?? .infinity) < chosenSeconds })
            #expect(bigger.count == 2)
            #expect(bigger.allSatisfy { $0["weights"] as? String == "bf16" && $0["mode"] as? String == "resident" })
            #expect(Set(bigger.compactMap { $0["tiled_decode"] as? Bool }) == [true, false])
            let potential = try #require((hardware["with_all_modes"] as? [String: Any])?["chosen"] as? [String: Any])
            #expect(potential["weights"] as? String == "bf16", "with every mode bf16 fits 20 GiB by streaming")
            #expect(potential["mode"] as? String == chosen["mode"] as? String)
            let gpus = try #require(hardware["gpus"] as? [[String: Any]])
            #expect(gpus.first?["utilization_percent"] as? Int == 12)
        }
    }
}
