/// What is wrong with a GGUF file. Every case names the file and, where there is one, the key or
/// tensor.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    /// The file does not start with `GGUF`.
    case badMagic(path: String)
    /// A version other than 2 and 3 (1 had 32-bit counts; a byte-swapped file reads as a huge one).
    case unsupportedVersion(path: String, version: UInt32)
    /// The header ends early: `what` was being read at byte `offset`.
    case truncated(path: String, what: String, offset: Int)
    /// A metadata value or tensor entry is malformed (`key` is the metadata key or tensor name).
    case malformedHeader(path: String, key: String, detail: String)
    /// A tensor type this build does not read, by its ggml name (`Q4_K`, `IQ2_XXS`, …).
    case unsupportedType(path: String, tensor: String, type: String)
    /// Dimensions that are zero-rank, negative, too many, overflow, or do not fit the type's blocks.
    case invalidShape(path: String, tensor: String, detail: String)
    /// A tensor's data offset is unaligned or its bytes reach past the end of the file.
    case spanOutOfBounds(path: String, tensor: String, detail: String)
    case overlappingSpans(path: String, first: String, second: String)
    case duplicateTensor(path: String, tensor: String)

    public var description: String {
        switch self {
        case .badMagic(let path): "\(path): not a GGUF file (the first 4 bytes are not 'GGUF')"
        case .unsupportedVersion(let path, let version): "\(path): GGUF version \(version) is not supported (2 and 3 are)"
        case .truncated(let path, let what, let offset): "\(path): truncated GGUF header: \(what) at byte \(offset) runs past the end"
        case .malformedHeader(let path, let key, let detail): "\(path): GGUF '\(key)': \(detail)"
        case .unsupportedType(let path, let tensor, let type):
            "\(path): tensor '\(tensor)' has GGUF type \(type), which zimage does not read (F32, F16, BF16 and Q8_0 are read)"
        case .invalidShape(let path, let tensor, let detail): "\(path): tensor '\(tensor)': invalid dimensions: \(detail)"
        case .spanOutOfBounds(let path, let tensor, let detail): "\(path): tensor '\(tensor)': \(detail)"
        case .overlappingSpans(let path, let first, let second):
            "\(path): tensors '\(first)' and '\(second)' have overlapping data"
        case .duplicateTensor(let path, let tensor): "\(path): tensor '\(tensor)' appears twice"
        }
    }
}
