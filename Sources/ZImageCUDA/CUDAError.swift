/// Failures of the CUDA driver, NVRTC and cuBLASLt, each naming the call that failed.
public enum CUDAError: Error, Equatable, CustomStringConvertible {
    /// A library could not be opened; for `libcuda` this means no CUDA driver is installed.
    case libraryNotFound(library: String, attempts: [String])
    case missingSymbol(library: String, symbol: String)
    /// A driver call returned `code` (`CUresult`).
    case driver(call: String, code: Int32, name: String, message: String)
    /// NVRTC failed; `log` holds the compiler's output.
    case compilation(call: String, code: Int32, message: String, log: String)
    /// A cuBLASLt call returned `status`.
    case cublas(call: String, status: Int32)
    /// A cuDNN call returned `status`.
    case cudnn(call: String, status: Int32, message: String)
    /// No GPU with this ordinal.
    case noSuchDevice(ordinal: Int, count: Int)
    /// This GPU cannot do what was asked (the message says what would work instead).
    case unsupported(String)

    public var description: String {
        switch self {
        case .libraryNotFound(let library, let attempts):
            (library == "libcuda" ? "no CUDA driver found" : "\(library) not found")
                + " (tried: \(attempts.joined(separator: "; ")))"
        case .missingSymbol(let library, let symbol): "\(library) lacks \(symbol) (too old?)"
        case .driver(let call, let code, let name, let message): "\(call) failed: \(name) (\(code)): \(message)"
        case .compilation(let call, let code, let message, let log):
            "\(call) failed (\(code)): \(message)" + (log.isEmpty ? "" : "\n\(log)")
        case .cublas(let call, let status): "\(call) failed with cuBLAS status \(status)"
        case .cudnn(let call, let status, let message): "\(call) failed with cuDNN status \(status): \(message)"
        case .noSuchDevice(let ordinal, let count): "no CUDA device \(ordinal) (\(count) present)"
        case .unsupported(let message): message
        }
    }

    /// `CUDA_ERROR_OUT_OF_MEMORY`.
    static let outOfMemoryCode: Int32 = 2
}
