/// Efficiencies (achieved ÷ datasheet) fitted to our own measured runs, so a prediction for another
/// card is its datasheet numbers × what this engine reached on the H200.
///
/// Sources: `bench/results/2026-12-01-h200-zimage-followup.json` (times: bf16 transformer files,
/// 1024², 8 steps, prompt "a red fox in the snow": 32 caption tokens after padding, about 20 real
/// ones) and `bench/results/2026-12-01-h200-vram.json` (memory: nvidia-smi every 50 ms, whole
/// device, next to the CUDA pool's high-water marks), both on the engine of `EngineCapabilities
/// .calibrationRuns` (the token embedding on the device, FP8 keeping its dense copies).
///
/// The fixed overhead (what is on the device beyond the weights and the modelled activations,
/// through every stage) is three measured parts:
/// - **context** 527 MiB: a refused run's nvidia-smi peak (the process had created its CUDA context,
///   then refused before loading; the driver's own share included). Loaded runs agree: nvidia-smi
///   less the pool's held bytes is 27.61 − 27.08 = 0.53 GiB (bf16 unbudgeted) and 22.20 − 21.66 =
///   0.54 GiB (bf16 at 24 GiB, tiled);
/// - **the pool's cache** 1.50 GiB: held less in use at the tiled bf16 run's peak (21.66 − 20.16 GiB):
///   freed blocks (text-encoder activations, load staging, the last step's temporaries) kept for
///   reuse. Its peak is the denoising loop's (22.20 GiB on nvidia-smi against the 22.1 GiB plateau
///   before the VAE that issue 10 measured), so this is the loop's cache;
/// - **workspaces** 0.64 GiB: the tensors in use at that peak beyond the weights (20.16 − 18.93 GiB)
///   less the DiT activations the model counts (0.59 GiB at 4 128 tokens): cuBLASLt/cuDNN
///   workspaces, RoPE tables, latents, caption features.
/// That is 2.66 GiB (the old single figure, 3.2 GiB, was the plateau less the weights: it held the
/// DiT activations, then counted them again). The VAE's bytes per decoded pixel are what the
/// unbudgeted bf16 peak (28 275 MiB, untiled) leaves above weights and overhead: 6.03 GiB over
/// 1024² (the pool: 3.19 GiB of live tensors, the rest cached blocks the decode's larger requests
/// could not reuse).
public struct Calibration: Sendable, Equatable, Codable {
    /// The card the measurements were made on.
    public var card: Card
    /// Measured milliseconds of one DiT forward at 1024² (bf16, then FP8 GEMMs).
    public var forwardBF16Milliseconds = 90.46
    public var forwardFP8Milliseconds = 71.28
    /// Measured milliseconds of the text encoder (20 real tokens) and of the VAE decode at 1024².
    public var textEncoderMilliseconds = 4.98
    public var vaeMilliseconds = 35.92
    /// Measured seconds of one image end to end at 1024² (bf16); the rest after the stages is per-image overhead.
    public var endToEndSeconds = 0.7863
    /// A fresh process's first image less its second (same prompt) less the text encoder:
    /// 1.268 − 0.767 − 0.005 s (`bench/results/2026-12-01-h200-vram-table.json`, repeat-none): the
    /// one-time cuDNN/cuBLASLt plans and the kernel module load.
    public var firstImageOverheadSeconds = 0.496
    /// Real tokens the measured prompt had (the text encoder's cost) and caption tokens after padding.
    public var measuredPromptTokens = 20
    /// nvidia-smi peak of the unbudgeted bf16 run at 1024² (full VAE decode).
    public var peakBF16Bytes = 28_275 << 20
    /// nvidia-smi peak of a run refused before loading: the CUDA context and the driver's share.
    public var contextBytes = 527 << 20
    /// The pool's marks at the peak of the bf16 run at 24 GiB (resident, tiled decode): tensors in
    /// use, and held from the driver (in use + cached).
    public var tiledPoolInUseBytes = Int(20.16 * Double(1 << 30))
    public var tiledPoolHeldBytes = Int(21.66 * Double(1 << 30))
    /// The pool's tensors in use at the peak of the unbudgeted bf16 run (full decode): the VAE's live
    /// tensors on top of the weights and workspaces (its per-pixel figure without the blocks it
    /// could not reuse, which a pool under a budget gives back).
    public var untiledPoolInUseBytes = Int(22.12 * Double(1 << 30))

    /// The H200 runs of 2026-12-01.
    public static let h200 = Calibration(card: CardCatalog.cards.first { $0.name.contains("H200") }
        ?? Card(name: "NVIDIA H200", memoryGiB: 140.4, computeCapability: "9.0", backend: .cuda, bandwidthGBps: 4800,
                hostGBps: 50, bf16TFLOPS: 989, fp8TFLOPS: 1979))

    /// CPU FLOP/s per core: the full-size model at 256² on 2 EPYC cores (fp32, OpenBLAS) took
    /// 388 s for 8 steps (`bench/results/2026-11-27-fullsize-cpu-256.json`), ≈ 37.5 GFLOP/s a core.
    public static let cpuFLOPSPerCore = 37.5e9

    public init(card: Card) { self.card = card }

    /// The fitted efficiencies of `model` on this calibration's runs.
    public func efficiencies(_ model: ModelShape) -> Efficiencies {
        let f = model.transformerFLOPs(width: 1024, height: 1024, captionTokens: measuredPromptTokens)
        let bf16 = (f.imageLinear + f.attention + f.other) / (forwardBF16Milliseconds / 1000 * card.bf16FLOPS)
        // With FP8 only the image-token blocks' linear layers change; the rest runs as in bf16.
        let rest = (f.attention + f.other) / (bf16 * card.bf16FLOPS)
        let fp8Seconds = max(forwardFP8Milliseconds / 1000 - rest, 1e-6)
        let fp8 = f.imageLinear / (fp8Seconds * (card.fp8FLOPS ?? card.bf16FLOPS))
        let vae = model.vaeDecodeFLOPs(width: 1024, height: 1024) / (vaeMilliseconds / 1000 * card.bf16FLOPS)
        // Twenty tokens through 3.5 B layer parameters is a read of the layers (the embedding only
        // gathers twenty rows): bandwidth-bound.
        let layers = Double(2 * (model.textParameters - model.textEmbeddingParameters))
        let text = layers / (textEncoderMilliseconds / 1000 * card.memoryBandwidth)
        let stages = (textEncoderMilliseconds + 8 * forwardBF16Milliseconds + vaeMilliseconds) / 1000
        // Memory, on the calibration runs' engine: bf16, the embedding on the device.
        let weights = model.weightBytes(.bf16, keepsDenseCopy: false)
        let resident = weights.transformer + weights.textEncoder + weights.vae
        let joint = model.imageTokens(width: 1024, height: 1024) + model.captionTokens(measuredPromptTokens)
        let activations = model.transformerActivationBytes(tokens: joint)
        let poolCache = max(tiledPoolHeldBytes - tiledPoolInUseBytes, 0)
        let workspaces = max(tiledPoolInUseBytes - resident - activations, 0)
        let fixed = contextBytes + poolCache + workspaces
        let vaeBytesPerPixel = Double(max(peakBF16Bytes - fixed - resident, 0)) / (1024 * 1024)
        let vaeLiveBytesPerPixel = Double(max(untiledPoolInUseBytes - resident - workspaces, 0)) / (1024 * 1024)
        return Efficiencies(bf16: bf16, fp8: fp8, vae: vae, textEncoderBandwidth: text,
                            perImageOverheadSeconds: max(endToEndSeconds - stages, 0),
                            fixedOverheadBytes: fixed, vaeBytesPerPixel: vaeBytesPerPixel,
                            vaeLiveBytesPerPixel: vaeLiveBytesPerPixel,
                            contextBytes: contextBytes, poolCacheBytes: poolCache, workspaceBytes: workspaces,
                            firstImageOverheadSeconds: firstImageOverheadSeconds)
    }
}

/// What `Calibration.efficiencies` fits.
public struct Efficiencies: Sendable, Equatable, Codable {
    /// Share of dense bf16 throughput the DiT reaches (linear layers and attention together).
    public var bf16: Double
    /// Share of dense FP8 throughput the FP8 linear layers reach (quantisation passes included).
    public var fp8: Double
    /// Share of dense bf16 throughput the VAE decode reaches.
    public var vae: Double
    /// Share of memory bandwidth the text encoder reaches (it reads its layers once per prompt); also
    /// the rate assumed for int8's widening passes.
    public var textEncoderBandwidth: Double
    /// Seconds per image outside the three stages (noise, scheduler, PNG conversion, launches).
    public var perImageOverheadSeconds: Double
    /// Device bytes beyond the weights and modelled activations through every stage: the sum of
    /// `contextBytes`, `poolCacheBytes` and `workspaceBytes`.
    public var fixedOverheadBytes: Int
    /// Device bytes the VAE decode adds per output pixel (cuDNN's channels-last buffers, feature maps,
    /// the pool's blocks it cannot reuse).
    public var vaeBytesPerPixel: Double
    /// The VAE decode's live tensors per output pixel (without the blocks it could not reuse): a
    /// tile's bytes, served from the blocks the denoising loop freed (measured: tiled runs peak at the
    /// loop, `bench/results/2026-12-01-h200-vram-table.json`).
    public var vaeLiveBytesPerPixel = 0.0
    /// The CUDA context and the driver's share (nvidia-smi before any weight loads).
    public var contextBytes = 0
    /// The pool's cached (freed, not returned) blocks through the denoising loop.
    public var poolCacheBytes = 0
    /// Tensors in use beyond the weights and the modelled activations (library workspaces, tables).
    public var workspaceBytes = 0
    /// Seconds a process's first image pays once (see `Calibration.firstImageOverheadSeconds`).
    public var firstImageOverheadSeconds = 0.0
}
