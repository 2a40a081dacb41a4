import Foundation
import ZImageCUDA
import ZImagePipeline
import ZImageTensor

/// `ZImageBench pipeline --model DIR [--precision P]`: loads the pipeline once on the GPU (bf16 unless
/// asked otherwise) and times its
/// stages at the race's settings (prompt "a red fox in the snow", 8 steps, guidance 0, seed 42):
/// the text encoder, one DiT forward at 512² and 1024², the VAE decode at 1024², the whole
/// generation at 1024² (median of `repeats`), and a batch of 4. Host clock around synchronised
/// work, after one warm-up of each. With `--profile`, adds the per-op table of one generation.
enum PipelineBenchmark {
    static func run(model: String, repeats: Int, profile: Bool, precision: Precision) throws -> [String: Any] {
        let loadStart = Date()
        let gpu = try CUDABackend(ordinal: 0)
        let pipeline = try ZImagePipeline(modelDirectory: model, backend: gpu, precision: precision)
        try gpu.synchronize()
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let prompt = "a red fox in the snow"

        func median(_ count: Int, _ body: () throws -> Void) throws -> Double {
            try body()   // warm-up
            try gpu.synchronize()
            var times: [Double] = []
            for _ in 0..<count {
                let start = Date()
                try body()
                try gpu.synchronize()
                times.append(Date().timeIntervalSince(start) * 1000)
            }
            return times.sorted()[times.count / 2]
        }
        let textEncoderMs = try median(5) { _ = try pipeline.encodePrompt(prompt) }
        let features = try pipeline.encodePrompt(prompt).features
        let caption = try pipeline.transformer.prepareCaption(features, activationDType: precision.dtype)
        var forward: [String: Double] = [:]
        for size in [512, 1024] {
            let latent = try pipeline.initialLatent(width: size, height: size, seed: 42).cast(to: precision.dtype)
            forward["\(size)"] = try median(5) { _ = try pipeline.transformer(latent, t: 0.5, caption: caption) }
        }
        let latent = try pipeline.initialLatent(width: 1024, height: 1024, seed: 42)
        let vaeMs = try median(3) { _ = try pipeline.decode(latent) }
        var parameters = GenerationParameters(prompt: prompt)
        parameters.seed = 42
        let endToEndMs = try median(repeats) { _ = try pipeline.generate(parameters) }
        var batch = parameters
        batch.batchSize = 4
        let batchMs = try median(1) { _ = try pipeline.generate(batch) }
        var result: [String: Any] = [
            "device": gpu.info.name, "load_s": loadSeconds, "text_encoder_ms": textEncoderMs,
            "forward_512_ms": forward["512"] ?? 0, "forward_1024_ms": forward["1024"] ?? 0,
            "vae_decode_1024_ms": vaeMs, "e2e_1024_s": endToEndMs / 1000, "batch4_per_image_s": batchMs / 4000,
            "fused_kernels": gpu.useFusedKernels, "precision": precision.rawValue,
            "pool_mib": Double(gpu.memoryInUse.tensors + gpu.memoryInUse.cached) / 1_048_576,
        ]
        if profile {
            gpu.startProfiling()
            _ = try pipeline.generate(parameters)
            result["profile"] = gpu.profileReport() ?? ""
        }
        return result
    }
}
