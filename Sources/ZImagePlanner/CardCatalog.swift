import Foundation

/// The built-in cards (`zimage advise --all`) and lenient name matching (`--card "RTX 4080 SUPER"`).
///
/// Numbers are datasheet values: dense tensor throughput without sparsity (GeForce at the FP32-
/// accumulate rate, half their FP16-accumulate figure), memory bandwidth, PCIe generation × lanes.
public enum CardCatalog {
    private static let noBackend = "no zimage backend for this GPU yet (CUDA only; the CPU backend runs anywhere)"

    /// Every built-in card: the guide's seven, data-centre NVIDIA cards, more GeForce cards and the CPU.
    public static let cards: [Card] = [
        Card(name: "NVIDIA GeForce RTX 3060 12GB", memoryGiB: 12, computeCapability: "8.6", backend: .cuda,
             bandwidthGBps: 360, hostGBps: 25, bf16TFLOPS: 25.6, fp8TFLOPS: nil),
        Card(name: "NVIDIA GeForce RTX 3080 10GB", memoryGiB: 10, computeCapability: "8.6", backend: .cuda,
             bandwidthGBps: 760, hostGBps: 25, bf16TFLOPS: 59.5, fp8TFLOPS: nil),
        Card(name: "NVIDIA GeForce RTX 3090", memoryGiB: 24, computeCapability: "8.6", backend: .cuda,
             bandwidthGBps: 936, hostGBps: 25, bf16TFLOPS: 71, fp8TFLOPS: nil),
        Card(name: "NVIDIA GeForce RTX 4060 Ti 16GB", memoryGiB: 16, computeCapability: "8.9", backend: .cuda,
             bandwidthGBps: 288, hostGBps: 12.5, bf16TFLOPS: 44.2, fp8TFLOPS: 88.4),
        Card(name: "NVIDIA GeForce RTX 4070 Ti 12GB", memoryGiB: 12, computeCapability: "8.9", backend: .cuda,
             bandwidthGBps: 504, hostGBps: 25, bf16TFLOPS: 80.2, fp8TFLOPS: 160.4),
        Card(name: "NVIDIA GeForce RTX 4080 SUPER 16GB", memoryGiB: 16, computeCapability: "8.9", backend: .cuda,
             bandwidthGBps: 736, hostGBps: 25, bf16TFLOPS: 104.4, fp8TFLOPS: 208.9),
        Card(name: "NVIDIA GeForce RTX 4090 24GB", memoryGiB: 24, computeCapability: "8.9", backend: .cuda,
             bandwidthGBps: 1008, hostGBps: 25, bf16TFLOPS: 165.2, fp8TFLOPS: 330.3),
        Card(name: "NVIDIA GeForce RTX 5080 16GB", memoryGiB: 16, computeCapability: "12.0", backend: .cuda,
             bandwidthGBps: 960, hostGBps: 50, bf16TFLOPS: 112.6, fp8TFLOPS: 225.1),
        Card(name: "NVIDIA GeForce RTX 5090 32GB", memoryGiB: 32, computeCapability: "12.0", backend: .cuda,
             bandwidthGBps: 1792, hostGBps: 50, bf16TFLOPS: 209.5, fp8TFLOPS: 419),
        Card(name: "NVIDIA L40S 48GB", memoryGiB: 48, computeCapability: "8.9", backend: .cuda,
             bandwidthGBps: 864, hostGBps: 25, bf16TFLOPS: 362, fp8TFLOPS: 733),
        Card(name: "NVIDIA A100 40GB", memoryGiB: 40, computeCapability: "8.0", backend: .cuda,
             bandwidthGBps: 1555, hostGBps: 25, bf16TFLOPS: 312, fp8TFLOPS: nil),
        Card(name: "NVIDIA A100 80GB", memoryGiB: 80, computeCapability: "8.0", backend: .cuda,
             bandwidthGBps: 2039, hostGBps: 25, bf16TFLOPS: 312, fp8TFLOPS: nil),
        Card(name: "NVIDIA H100 80GB", memoryGiB: 80, computeCapability: "9.0", backend: .cuda,
             bandwidthGBps: 3350, hostGBps: 50, bf16TFLOPS: 989, fp8TFLOPS: 1979),
        Card(name: "NVIDIA H200 141GB", memoryGiB: 140.4, computeCapability: "9.0", backend: .cuda,
             bandwidthGBps: 4800, hostGBps: 50, bf16TFLOPS: 989, fp8TFLOPS: 1979),
        Card(name: "AMD Radeon RX 7700 XT 12GB", memoryGiB: 12, computeCapability: nil, backend: .none,
             bandwidthGBps: 432, hostGBps: 25, bf16TFLOPS: 70, fp8TFLOPS: nil, note: noBackend),
        Card(name: "Apple M2 Max 32GB", memoryGiB: 32, computeCapability: nil, backend: .none,
             bandwidthGBps: 400, hostGBps: 400, bf16TFLOPS: 13.6, fp8TFLOPS: nil,
             note: "no Metal backend in zimage yet; the CPU backend runs there (slowly)"),
        cpu(cores: 16, memoryGiB: 64),
    ]

    /// A CPU with `cores` cores: throughput from our 2-core measurement (Calibration.cpuFLOPSPerCore).
    public static func cpu(cores: Int, memoryGiB: Double) -> Card {
        let name = "CPU only (\(cores) cores)"
        return Card(name: name, memoryGiB: memoryGiB, computeCapability: nil, backend: .cpu, bandwidthGBps: 50,
                    hostGBps: 50, bf16TFLOPS: Double(max(cores, 1)) * Calibration.cpuFLOPSPerCore / 1e12, fp8TFLOPS: nil)
    }

    /// The result of matching a name.
    public enum Match: Equatable, Sendable {
        case found(Card)
        /// No card by that name; the nearest names.
        case unknown(near: [String])
    }

    /// Words that never tell two cards apart.
    private static let noise = ["nvidia", "geforce", "amd", "radeon", "apple", "rtx", "gtx", "sxm5", "sxm4", "sxm",
                                "pcie", "hbm3e", "hbm3", "hbm2e", "nvl", "graphics", "only", "gpu"]

    /// A name reduced to what identifies the card: lower case, no spaces or punctuation, without
    /// vendor words and without a memory size (returned apart: "12GB" → 12).
    static func key(_ name: String) -> (key: String, memoryGiB: Int?) {
        var text = name.lowercased()
        var memory: Int?
        if let range = text.range(of: #"(\d+)\s*(gb|gib|g)\b"#, options: .regularExpression) {
            memory = Int(text[range].prefix { $0.isNumber })
            text.removeSubrange(range)
        }
        var words = text.split { !($0.isLetter || $0.isNumber) }.map(String.init)
        words.removeAll { noise.contains($0) }
        // "(16 cores)" and the like: the CPU matches with any count.
        if words.contains("cpu") { return ("cpu", nil) }
        // Written together ("rtx4080super"): the vendor words at the front go too.
        var key = words.joined()
        while let prefix = ["nvidia", "geforce", "rtx", "gtx"].first(where: { key.hasPrefix($0) && key.count > $0.count }) {
            key.removeFirst(prefix.count)
        }
        return (key, memory)
    }

    /// The card `name` names, matched leniently (case, spaces, vendor words, a "12GB" suffix,
    /// Super/SUPER); with several of one name (A100 40/80) the memory picks, else the larger.
    public static func match(_ name: String, in cards: [Card] = cards) -> Match {
        let (query, memory) = key(name)
        guard !query.isEmpty else { return .unknown(near: nearest(query, in: cards)) }
        let same = cards.filter { key($0.name).key == query }
        if let memory, let exact = same.first(where: { key($0.name).memoryGiB == memory }) { return .found(exact) }
        if memory == nil || same.count == 1, let largest = same.max(by: { $0.memoryBytes < $1.memoryBytes }) {
            if let memory, let own = key(largest.name).memoryGiB, own != memory {
                return .unknown(near: same.map(\.name))
            }
            return .found(largest)
        }
        return .unknown(near: same.isEmpty ? nearest(query, in: cards) : same.map(\.name))
    }

    /// Up to four card names nearest to `query` (edit distance on the keys; a shared prefix first).
    static func nearest(_ query: String, in cards: [Card]) -> [String] {
        let scored = cards.map { card -> (String, Int) in
            let key = key(card.name).key
            let shared = query.isEmpty ? 0 : zip(key, query).prefix { $0 == $1 }.count
            let contains = !query.isEmpty && key.contains(query) ? 10 : 0
            return (card.name, editDistance(query, key) - 2 * shared - contains)
        }
        return scored.sorted { $0.1 < $1.1 }.prefix(4).map(\.0)
    }

    /// Levenshtein distance.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
