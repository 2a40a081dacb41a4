/// Efficiencies (achieved ÷ datasheet) fitted to our own measured runs, so a prediction for another
/// card is its datasheet numbers × what this engine reached on the H200.
///
/// Source: `bench/results/2026-12-01-h200-zimage-followup.json` (bf16 transformer files, 1024²,
/// 8 steps, prompt "a red fox in the snow": 32 caption tokens after padding, about 20 real ones)
/// and the weights plateau of issue 10 (nvidia-smi during generation, before the VAE).
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
    /// Real tokens the measured prompt had (the text encoder's cost) and caption tokens after padding.
    public var measuredPromptTokens = 20
    /// Process peak (nvidia-smi) of the bf16 run at 1024², and the plateau with all weights resident before the VAE.
    public var peakBF16Bytes = Int(27.7 * Double(1 << 30))
    public var plateauBF16Bytes = Int(22.1 * Double(1 << 30))

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
        // Twenty tokens through 3.9 B parameters is a read of the weights: bandwidth-bound.
        let text = Double(2 * model.textParameters) / (textEncoderMilliseconds / 1000 * card.memoryBandwidth)
        let stages = (textEncoderMilliseconds + 8 * forwardBF16Milliseconds + vaeMilliseconds) / 1000
        let weights = model.weightBytes(.bf16, keepsDenseCopy: false)
        let resident = weights.transformer + weights.textEncoder + weights.vae
        let vaeBytesPerPixel = Double(peakBF16Bytes - plateauBF16Bytes) / (1024 * 1024)
        return Efficiencies(bf16: bf16, fp8: fp8, vae: vae, textEncoderBandwidth: text,
                            perImageOverheadSeconds: max(endToEndSeconds - stages, 0),
                            fixedOverheadBytes: max(plateauBF16Bytes - resident, 0), vaeBytesPerPixel: vaeBytesPerPixel)
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
    /// Share of memory bandwidth the text encoder reaches (it reads its weights once per prompt).
    public var textEncoderBandwidth: Double
    /// Seconds per image outside the three stages (noise, scheduler, PNG conversion, launches).
    public var perImageOverheadSeconds: Double
    /// Device bytes beyond the weights while resident (CUDA context, library kernels, workspaces).
    public var fixedOverheadBytes: Int
    /// Device bytes the VAE decode adds per output pixel (cuDNN's channels-last buffers, feature maps).
    public var vaeBytesPerPixel: Double
}
