/// Why a LoRA file cannot be used. Each case names the file and, where there is one, the key
/// (as written in the file) at fault: a LoRA is never applied with keys silently dropped.
public enum LoRAError: Error, Equatable, CustomStringConvertible {
    /// Keys the conversion does not know (diffusers 0.42.1 raises `ValueError` for them too).
    case unknownKeys(file: String, keys: [String])
    /// A down (A) matrix without its up (B) matrix, or the reverse.
    case missingPartner(file: String, key: String, partner: String)
    /// A tensor of the wrong rank, dtype or size for its role.
    case malformedTensor(file: String, key: String, detail: String)
    /// The LoRA targets a module the transformer does not have (a LoRA for another model).
    case unknownModule(file: String, key: String, module: String)
    /// The LoRA's update does not fit the weight it targets (a LoRA for another model size).
    case shapeMismatch(file: String, key: String, module: String, expected: [Int], found: [Int])
    /// A feature of the file this engine does not apply (DoRA, LoRA biases, …).
    case unsupported(file: String, detail: String)
    /// A strength that is not a finite number in the accepted range.
    case invalidStrength(file: String, strength: Float)
    /// The file holds no LoRA tensors at all.
    case empty(file: String)

    public var description: String {
        switch self {
        case .unknownKeys(let file, let keys):
            let shown = keys.count <= 8 ? keys.joined(separator: ", ") : keys.prefix(8).joined(separator: ", ") + ", …"
            return "\(file): \(keys.count) LoRA key(s) not understood (nothing was applied): \(shown)"
        case .missingPartner(let file, let key, let partner): return "\(file): '\(key)' has no matching '\(partner)'"
        case .malformedTensor(let file, let key, let detail): return "\(file): '\(key)' \(detail)"
        case .unknownModule(let file, let key, let module):
            return "\(file): '\(key)' targets '\(module)', which the Z-Image transformer does not have "
                + "(a LoRA for another model?)"
        case .shapeMismatch(let file, let key, let module, let expected, let found):
            return "\(file): '\(key)' gives an update of shape \(found) for '\(module)', which is \(expected) "
                + "(a LoRA for another model?)"
        case .unsupported(let file, let detail): return "\(file): \(detail)"
        case .invalidStrength(let file, let strength): return "\(file): strength \(strength) is not in −10…10"
        case .empty(let file): return "\(file): no LoRA tensors"
        }
    }
}
