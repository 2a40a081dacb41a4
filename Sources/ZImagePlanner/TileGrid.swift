import Foundation

/// The tiles `TiledDecoding` decodes (64 latent pixels, 16 overlapping; ZImagePipeline/TiledDecoding.swift).
enum TileGrid {
    static let tile = 64, overlap = 16, scale = 8

    static func starts(_ extent: Int) -> [Int] {
        guard extent > tile else { return [0] }
        var result = Array(stride(from: 0, to: max(extent - overlap, 1), by: tile - overlap))
        if let last = result.last, last + tile < extent { result.append(extent - tile) }
        return Array(Set(result.map { min($0, max(extent - tile, 0)) })).sorted()
    }

    /// Output pixels of the largest tile.
    static func largestTilePixels(width: Int, height: Int) -> Int {
        min(width, tile * scale) * min(height, tile * scale)
    }

    /// Decoded pixels ÷ image pixels (the overlap's extra work).
    static func overlapFactor(width: Int, height: Int) -> Double {
        let (w, h) = (width / scale, height / scale)
        guard w > tile || h > tile else { return 1 }
        let rows = starts(h).map { min(tile, h - $0) }.reduce(0, +)
        let columns = starts(w).map { min(tile, w - $0) }.reduce(0, +)
        return Double(rows * columns) / Double(w * h)
    }
}

/// Byte counts as "27.7 GiB".
public enum ByteText {
    public static func gib(_ bytes: Int) -> String { String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }
}
