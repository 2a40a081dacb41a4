/// Conversions between float32 and the 16-bit float formats, bit-exact with PyTorch.
///
/// bfloat16 is the upper half of a float32; rounding is to nearest, ties to even, and every NaN
/// becomes the quiet NaN `0x7FC0` (as `c10::BFloat16` does). float16 uses Swift's `Float16`,
/// which rounds to nearest even as well.
public enum HalfPrecision {
    /// Rounds a float32 to bfloat16 bits (nearest, ties to even).
    @inlinable
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        if value.isNaN { return 0x7FC0 }
        let bits = value.bitPattern
        let lsb = (bits >> 16) & 1
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ lsb) >> 16)
    }

    /// Widens bfloat16 bits to float32 (exact).
    @inlinable
    public static func float(bfloat16Bits bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Rounds a float32 to float16 bits (nearest, ties to even).
    @inlinable
    public static func float16Bits(_ value: Float) -> UInt16 { Float16(value).bitPattern }

    /// Widens float16 bits to float32 (exact).
    @inlinable
    public static func float(float16Bits bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    /// Rounds a float32 through bfloat16 and back (what storing in bf16 does to a value).
    @inlinable
    public static func roundedToBFloat16(_ value: Float) -> Float { float(bfloat16Bits: bfloat16Bits(value)) }
}
