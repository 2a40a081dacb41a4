/// Errors from tensor ops and backends. Each case says which op failed and why.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    /// Operand shapes do not fit the op.
    case shapeMismatch(op: String, detail: String)
    /// The op does not compute on this element type.
    case unsupportedDType(op: String, dtype: DType)
    /// The operands live on different devices.
    case deviceMismatch(op: String, Device, Device)
    /// The backend does not implement this op (yet).
    case unsupportedOp(op: String, device: Device)
    /// An argument is out of range (an axis, an id, a size).
    case invalidArgument(op: String, detail: String)
    /// The device could not provide `requestedBytes`.
    case outOfMemory(device: Device, requestedBytes: Int, freeBytes: Int?)
    /// A failure reported by the backend's driver or library.
    case backendFailure(device: Device, detail: String)

    public var description: String {
        switch self {
        case .shapeMismatch(let op, let detail): "\(op): shape mismatch: \(detail)"
        case .unsupportedDType(let op, let dtype): "\(op): unsupported dtype \(dtype)"
        case .deviceMismatch(let op, let a, let b): "\(op): operands on different devices (\(a) and \(b))"
        case .unsupportedOp(let op, let device): "\(op) is not implemented on \(device)"
        case .invalidArgument(let op, let detail): "\(op): \(detail)"
        case .outOfMemory(let device, let requested, let free):
            "out of memory on \(device): asked for \(ByteCount.format(requested))"
                + (free.map { ", \(ByteCount.format($0)) free" } ?? "")
        case .backendFailure(let device, let detail): "\(device): \(detail)"
        }
    }
}

/// Human-readable byte counts ("1.50 GiB").
public enum ByteCount {
    public static func format(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let rounded = (value * 100).rounded() / 100
        return "\(rounded) \(units[unit])"
    }
}
