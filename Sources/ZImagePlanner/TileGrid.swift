import Foundation

/// The tiles a tiled VAE decode covers a latent with: the one grid both the decode
/// (ZImagePipeline/TiledDecoding.swift) and the planner's costing use.
///
/// Along each axis, tiles of `tile` latent pixels (64 = 512 image pixels) stepping by `tile −
/// overlap` (48), the last moved back to end at the edge: 1024² (128 latent pixels) is 3 × 3 tiles
/// at 0, 48 and 64, 2.25 × the image's pixels decoded, 512² at once. `bench/device_tiles.sh`
/// measures other tiles (`ZIMAGE_DECODE_TILE`).
public enum TileGrid {
    public static let tile = 64, overlap = 16, scale = 8

    /// The tile size and start of each tile along one latent extent (one tile of the whole extent
    /// when it fits in `tile`).
    public static func tiles(_ extent: Int, tile: Int = tile, overlap: Int = overlap) -> (size: Int, starts: [Int]) {
        guard extent > tile, tile > overlap else { return (extent, [0]) }
        var starts = Array(stride(from: 0, to: extent - overlap, by: tile - overlap))
        if let last = starts.last, last + tile < extent { starts.append(extent - tile) }
        return (tile, Array(Set(starts.map { min($0, extent - tile) })).sorted())
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
