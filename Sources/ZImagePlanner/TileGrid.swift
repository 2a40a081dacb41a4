import Foundation

/// The tiles a tiled VAE decode covers a latent with: the one grid both the decode
/// (ZImagePipeline/TiledDecoding.swift) and the planner's costing use.
///
/// Along each axis, the fewest tiles of at most `maxTile` latent pixels (64 = 512 image pixels)
/// that overlap by at least `overlap` (16), all of one size, spread evenly: 1024² (128 latent
/// pixels) is 3 × 3 tiles of 54 (432² pixels) at 0, 37 and 74, 1.60 × the image's pixels decoded.
/// Fixed 64-pixel tiles stepping by 48 took 3 × 3 tiles of 64 (2.25 ×, 512² at once). Measured on
/// the H200 (`bench/results/2026-12-01-h200-tiles.json`, bf16 text streaming at 16 GiB, batch 4, the
/// repeated prompt): 0.901 s an image with 64-pixel tiles, 0.859 with 54 (0.860 with 2 × 2 of 80),
/// 0.800 with the full decode; peak 15 273 MiB with 64, 15 207 with 54.
public enum TileGrid {
    public static let maxTile = 64, overlap = 16, scale = 8

    /// The tile size and start of each tile along one latent extent (one tile of the whole extent
    /// when it fits in `maxTile`).
    public static func tiles(_ extent: Int, maxTile: Int = maxTile, overlap: Int = overlap) -> (size: Int, starts: [Int]) {
        guard extent > maxTile, maxTile > overlap else { return (extent, [0]) }
        // n tiles of size s cover the extent with overlaps ≥ o when n·s − (n − 1)·o ≥ extent.
        let count = (extent - overlap + (maxTile - overlap) - 1) / (maxTile - overlap)
        let size = (extent + (count - 1) * overlap + count - 1) / count
        // Starts spread evenly: consecutive ones differ by at most ⌈(extent − s)/(n − 1)⌉ ≤ s − o.
        let starts = (0..<count).map { $0 * (extent - size) / (count - 1) }
        return (size, starts)
    }

    /// How many tiles cover a `width` × `height` image (1: the tiled decode is the plain one).
    public static func tileCount(width: Int, height: Int) -> Int {
        tiles(width / scale).starts.count * tiles(height / scale).starts.count
    }

    /// Output pixels of the largest tile.
    public static func largestTilePixels(width: Int, height: Int) -> Int {
        let (w, h) = (width / scale, height / scale)
        return tiles(w).size * scale * tiles(h).size * scale
    }

    /// Decoded pixels ÷ image pixels (the overlap's extra work).
    public static func overlapFactor(width: Int, height: Int) -> Double {
        let (w, h) = (width / scale, height / scale)
        guard w > 0, h > 0 else { return 1 }
        let columns = tiles(w), rows = tiles(h)
        return Double(columns.size * columns.starts.count * rows.size * rows.starts.count) / Double(w * h)
    }
}

/// Byte counts as "27.7 GiB".
public enum ByteText {
    public static func gib(_ bytes: Int) -> String { String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }
}
