import Foundation
import ZImageCPU
import ZImageModels
import ZImageTensor
import ZImageWeights

/// One denoising step of a DiT written by bench/cpu_step_diffusers.py, on the CPU, float32.
enum CPUStepBenchmark {
    static func run(directory: String, threads: Int, repeats: Int) throws -> [String: Any] {
        let backend = CPUBackend(threads: threads)
        let configuration = try ComponentConfiguration.decode(ZImageTransformerConfiguration.self,
                                                             path: directory + "/transformer/config.json")
        let weights = try WeightSet(path: directory + "/transformer/diffusion_pytorch_model.safetensors")
        let transformer = try ZImageTransformer(configuration: configuration, weights: weights, backend: backend)
        let inputs = try SafetensorsFile(path: directory + "/inputs.safetensors")
        let x = try inputs.tensor("x", on: backend), features = try inputs.tensor("cap", on: backend)
        let t = try inputs.tensor("t", on: backend).toFloats()[0]
        func time(_ body: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        // As diffusers does each step: caption embedder and context refiner included.
        var full: [Double] = [], cached: [Double] = []
        _ = try transformer(x, t: t, caption: transformer.prepareCaption(features, activationDType: .float32))
        for _ in 0..<repeats {
            full.append(try time {
                _ = try transformer(x, t: t, caption: transformer.prepareCaption(features, activationDType: .float32))
            })
        }
        // What zimage's sampler does: the caption is prepared once per prompt.
        let caption = try transformer.prepareCaption(features, activationDType: .float32)
        for _ in 0..<repeats { cached.append(try time { _ = try transformer(x, t: t, caption: caption) }) }
        full.sort()
        cached.sort()
        return ["implementation": "zimage", "threads": threads, "seconds_per_step": full[full.count / 2],
                "seconds_per_step_caption_cached": cached[cached.count / 2], "all": full]
    }
}
