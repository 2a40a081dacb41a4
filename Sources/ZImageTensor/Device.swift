/// Where a tensor's memory lives and where its ops run.
public enum Device: Hashable, Sendable, CustomStringConvertible {
    case cpu
    /// A CUDA GPU by ordinal.
    case cuda(Int)

    public var description: String {
        switch self {
        case .cpu: "cpu"
        case .cuda(let ordinal): "cuda:\(ordinal)"
        }
    }
}
