import Foundation
import ZImageModels
import ZImageTensor

/// The picture an img2img or inpainting generation starts from (already at the generation's size).
public struct InitImage: Sendable, Equatable {
    public var image: RGBImage
    /// Inpainting mask, one byte per pixel (≥ 128 repaints, below keeps: diffusers binarises at
    /// 0.5 after /255), the image's size; nil for img2img.
    public var mask: [UInt8]?

    public init(image: RGBImage, mask: [UInt8]? = nil) { (self.image, self.mask) = (image, mask) }

    /// diffusers' defaults: `ZImageImg2ImgPipeline` 0.6, `ZImageInpaintPipeline` 1.0.
    public var defaultStrength: Double { mask == nil ? 0.6 : 1.0 }
}

/// img2img and inpainting as diffusers 0.42.1's `ZImageImg2ImgPipeline` and `ZImageInpaintPipeline`
/// run them, per image on its own generator (seed + i): the encoder's `latent_dist.sample` draws
/// first, then the noise; the start latent is `scale_noise` = σ·ε + (1 − σ)·x0 at the first step
/// kept (`t_start = int(N − N·strength)`); inpainting blends `(1 − m)·scale_noise(x0, σ_next) + m·x`
/// after every step (x0 itself after the last), with the mask sampled nearest at latent size.
extension ZImagePipeline {
    /// The first step that runs for `strength` (diffusers `get_timesteps`).
    public static func firstStep(steps: Int, strength: Double) -> Int {
        let initial = min(Double(steps) * strength, Double(steps))
        return Int(max(Double(steps) - initial, 0))
    }

    /// `[1, 3, H, W]` float32 in [−1, 1] as `VaeImageProcessor.preprocess` makes it: p/255, then 2x − 1.
    public func pixels(_ image: RGBImage) throws -> Tensor {
        let plane = image.width * image.height
        var values = [Float](repeating: 0, count: 3 * plane)
        for index in 0..<plane {
            for channel in 0..<3 {
                values[channel * plane + index] = 2 * (Float(image.pixels[index * 3 + channel]) / 255) - 1
            }
        }
        return try backend.tensor(values, shape: [1, 3, image.height, image.width])
    }

    /// The scaled image latents `(z − shift)·scale` with z = `encode(x).latent_dist.sample(generator)`,
    /// as host floats `[16·h·w]` (the draw advances `generator`).
    public func imageLatents(_ image: RGBImage, generator: inout TorchGenerator) throws -> [Float] {
        guard let encoder else {
            throw GenerationError.modelNotSupported("this VAE file has no encoder (diffusers names), needed for img2img")
        }
        backend.beginStage("vae encode")
        let moments = try encoder.moments(pixels(image).cast(to: precision.autoencoderDType)).toFloats()
        let half = moments.count / 2
        let epsilon = generator.randn(count: half)
        let (shift, scale) = (Float(encoder.configuration.shiftFactor ?? 0), Float(encoder.configuration.scalingFactor))
        return (0..<half).map { index in
            let logVariance = min(max(moments[half + index], -30), 20)
            let z = moments[index] + Foundation.exp(0.5 * logVariance) * epsilon[index]
            return (z - shift) * scale
        }
    }

    /// The latent mask `[h·w]` (0 or 1): the binarised mask at pixels (8i, 8j), which is what
    /// `interpolate(mode="nearest")` to latent size picks.
    static func latentMask(_ mask: [UInt8], width: Int, height: Int, latentWidth: Int, latentHeight: Int) -> [Float] {
        let (stepY, stepX) = (height / latentHeight, width / latentWidth)
        var out = [Float](repeating: 0, count: latentWidth * latentHeight)
        for i in 0..<latentHeight {
            for j in 0..<latentWidth {
                // diffusers: /255, then ≥ 0.5 → 1 (128/255 = 0.502 is the first grey that repaints).
                out[i * latentWidth + j] = Float(mask[(i * stepY) * width + j * stepX]) / 255 >= 0.5 ? 1 : 0
            }
        }
        return out
    }

    /// Start latent, first step and (inpainting) the blend after each step, for one image.
    public struct EditStart {
        public var latent: Tensor
        public var firstStep: Int
        public var blend: ((Int, Tensor) throws -> Tensor)?
    }

    /// What `generate` starts one image of an img2img or inpainting run from (public for parity tests).
    public func editStart(_ input: InitImage, parameters p: GenerationParameters, seed: UInt64) throws -> EditStart {
        guard input.image.width == p.width, input.image.height == p.height else {
            throw GenerationError.invalidParameter("init_image", "is \(input.image.width)x\(input.image.height), "
                + "the generation \(p.width)x\(p.height)")
        }
        let strength = p.strength ?? input.defaultStrength
        guard strength.isFinite, (0...1).contains(strength) else {
            throw GenerationError.invalidParameter("strength", "\(strength) is outside 0...1")
        }
        let first = Self.firstStep(steps: p.steps, strength: strength)
        guard first < p.steps else {
            throw GenerationError.invalidParameter("strength", "\(strength) leaves no step of \(p.steps) to run")
        }
        var generator = TorchGenerator(seed: seed)
        let x0 = try imageLatents(input.image, generator: &generator)
        let noise = generator.randn(count: x0.count)
        let scheduler = FlowMatchEulerScheduler(steps: p.steps, shift: shift)
        let shape: Shape = [transformer.configuration.inChannels, 1, p.height / 8, p.width / 8]
        guard shape.count == x0.count else {
            throw TensorError.shapeMismatch(op: "img2img", detail: "encoder latents of \(x0.count) values for \(shape)")
        }
        func scaleNoise(_ sigma: Float) -> [Float] { zip(noise, x0).map { sigma * $0 + (1 - sigma) * $1 } }
        let latent = try backend.tensor(scaleNoise(scheduler.sigmas[first]), shape: shape)
        guard let mask = input.mask else { return EditStart(latent: latent, firstStep: first, blend: nil) }
        guard mask.count == p.width * p.height else {
            throw GenerationError.invalidParameter("mask", "has \(mask.count) pixels for a \(p.width)x\(p.height) image")
        }
        let plane = shape[2] * shape[3]
        let m = Self.latentMask(mask, width: p.width, height: p.height, latentWidth: shape[3], latentHeight: shape[2])
        let backend = self.backend
        let blend: (Int, Tensor) throws -> Tensor = { step, latents in
            let proper = step < p.steps - 1 ? scaleNoise(scheduler.sigmas[step + 1]) : x0
            let current = try latents.toFloats()
            let blended = (0..<current.count).map { index in
                let weight = m[index % plane]
                return (1 - weight) * proper[index] + weight * current[index]
            }
            return try backend.tensor(blended, shape: latents.shape)
        }
        return EditStart(latent: latent, firstStep: first, blend: blend)
    }
}
