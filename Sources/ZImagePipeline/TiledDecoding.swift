import ZImageModels
import ZImagePlanner
import ZImageTensor

/// VAE decoding in overlapping latent tiles blended linearly across the overlap (the approach of
/// diffusers' `AutoencoderKL.tiled_decode`): peak memory follows the tile, not the image.
enum TiledDecoding {
    /// Latent tile size and overlap (64 latent pixels = 512 image pixels, a quarter overlapping).
    static let tile = 64, overlap = 16

    static func decode(_ z: Tensor, decoder: VAEDecoder, tile: Int = tile, overlap: Int = overlap) throws -> Tensor {
        let (height, width) = (z.shape[2], z.shape[3])
        guard height > tile || width > tile else { return try decoder.decode(z) }
        let stride = tile - overlap, scale = 8
        let outHeight = height * scale, outWidth = width * scale
        var sum = [Float](repeating: 0, count: 3 * outHeight * outWidth)
        var weight = [Float](repeating: 0, count: outHeight * outWidth)
        let starts = { (extent: Int) -> [Int] in
            var result = Array(Swift.stride(from: 0, to: max(extent - overlap, 1), by: stride))
            if let last = result.last, last + tile < extent { result.append(extent - tile) }
            return result.map { min($0, max(extent - tile, 0)) }
        }
        for top in Set(starts(height)).sorted() {
            for left in Set(starts(width)).sorted() {
                let h = min(tile, height - top), w = min(tile, width - left)
                let piece = try z.slice(axis: 2, top..<(top + h)).slice(axis: 3, left..<(left + w))
                let pixels = try decoder.decode(piece).toFloats()
                let (ph, pw) = (h * scale, w * scale)
                for y in 0..<ph {
                    // Linear ramps over the overlap on edges shared with another tile.
                    let wy = ramp(y, ph, overlap * scale, top > 0, top + h < height)
                    for x in 0..<pw {
                        let wx = ramp(x, pw, overlap * scale, left > 0, left + w < width)
                        let factor = wy * wx
                        let target = (top * scale + y) * outWidth + left * scale + x
                        weight[target] += factor
                        for c in 0..<3 { sum[c * outHeight * outWidth + target] += factor * pixels[(c * ph + y) * pw + x] }
                    }
                }
            }
        }
        let plane = outHeight * outWidth
        for c in 0..<3 { for i in 0..<plane { sum[c * plane + i] /= max(weight[i], 1e-6) } }
        return try z.backend.tensor(sum, shape: [1, 3, outHeight, outWidth])
    }

    private static func ramp(_ i: Int, _ extent: Int, _ overlap: Int, _ fadeIn: Bool, _ fadeOut: Bool) -> Float {
        var value: Float = 1
        if fadeIn, i < overlap { value = min(value, Float(i + 1) / Float(overlap + 1)) }
        if fadeOut, i >= extent - overlap { value = min(value, Float(extent - i) / Float(overlap + 1)) }
        return value
    }
}
