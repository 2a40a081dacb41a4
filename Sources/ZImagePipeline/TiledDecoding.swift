import Foundation
import ZImageModels
import ZImagePlanner
import ZImageTensor

/// VAE decoding in overlapping latent tiles blended linearly across the overlap (the approach of
/// diffusers' `AutoencoderKL.tiled_decode`): peak memory follows the tile, not the image. The tiles
/// are `TileGrid`'s, which the planner costs: the fewest of at most 64 latent pixels (512 image
/// pixels) a side overlapping by at least 16, all one size, evenly spread (3 × 3 of 54 at 1024²).
///
/// `ZIMAGE_DECODE_TILE` (latent pixels, 32 to 256) changes the largest tile for measurements only:
/// the planner costs `TileGrid.maxTile`, so a budgeted run with another keeps no promise
/// (bench/device_tiles.sh).
enum TiledDecoding {
    /// The largest tile `ZIMAGE_DECODE_TILE` asks for, else `TileGrid.maxTile`.
    static let maxTile: Int = {
        guard let text = ProcessInfo.processInfo.environment["ZIMAGE_DECODE_TILE"], let value = Int(text),
              (32...256).contains(value) else { return TileGrid.maxTile }
        return value
    }()

    static func decode(_ z: Tensor, decoder: VAEDecoder, maxTile: Int = maxTile,
                       overlap: Int = TileGrid.overlap) throws -> Tensor {
        let (height, width) = (z.shape[2], z.shape[3])
        guard height > maxTile || width > maxTile else { return try decoder.decode(z) }
        let scale = TileGrid.scale
        let outHeight = height * scale, outWidth = width * scale
        var sum = [Float](repeating: 0, count: 3 * outHeight * outWidth)
        var weight = [Float](repeating: 0, count: outHeight * outWidth)
        let rows = TileGrid.tiles(height, maxTile: maxTile, overlap: overlap)
        let columns = TileGrid.tiles(width, maxTile: maxTile, overlap: overlap)
        for top in rows.starts {
            for left in columns.starts {
                let h = rows.size, w = columns.size
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
