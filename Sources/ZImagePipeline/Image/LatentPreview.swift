import ZImageTensor

/// A cheap, rough preview of latents for live progress: three latent channels, each stretched to
/// its own 1st–99th percentile, at latent resolution (1/8 of the image). It shows composition
/// forming, not the final colours; decoding with the VAE would cost as much as a step.
public enum LatentPreview {
    /// `[16, 1, h, w]` (or `[16, h, w]`) latents → an RGB image of h × w.
    public static func image(_ latents: Tensor) throws -> RGBImage {
        let dims = latents.shape.dims
        let (height, width) = (dims[dims.count - 2], dims[dims.count - 1])
        let values = try latents.toFloats()
        let plane = height * width
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        for (rgb, channel) in [0, 1, 2].enumerated() where (channel + 1) * plane <= values.count {
            let slice = values[(channel * plane)..<((channel + 1) * plane)]
            let sorted = slice.sorted()
            let low = sorted[sorted.count / 100], high = sorted[sorted.count * 99 / 100]
            let range = max(high - low, 1e-6)
            for (index, value) in slice.enumerated() {
                pixels[index * 3 + rgb] = UInt8(min(max((value - low) / range, 0), 1) * 255)
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
