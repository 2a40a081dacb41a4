/// Seeds: 64-bit integers from 0 to 2^63 − 1 (what SQLite and JSON clients keep exactly);
/// −1 (or no seed) means "pick one at random". The only place that knows the marker and draws.
public enum Seed {
    /// The "random seed" marker every entry point accepts.
    public static let randomMarker: Int64 = -1
    /// The largest seed (stored as a signed 64-bit integer).
    public static let largest = UInt64(Int64.max)

    /// Resolves a requested seed: nil or −1 draws one (0…2^32 − 1, as A1111 does), 0…2^63 − 1 is
    /// kept exactly, anything else is refused naming `field`.
    public static func resolve(_ requested: Int64?, field: String = "seed") throws(ParameterError) -> UInt64 {
        guard let value = requested, value != randomMarker else { return UInt64.random(in: 0...UInt64(UInt32.max)) }
        guard value >= 0 else {
            throw ParameterError(field: field, reason: "\(value) must be -1 (random) or 0 to 2^63 - 1")
        }
        return UInt64(value)
    }

    /// The seed of image `index` of a batch that starts at `first` (wrapping, as the pipeline always has).
    public static func of(image index: Int, first: UInt64) -> UInt64 { first &+ UInt64(truncatingIfNeeded: index) }
}
