import ZImageTensor
import ZImageWeights

/// The text encoder's token-embedding table: on the device, or left in the (memory-mapped) file
/// with only a prompt's rows gathered on the host and uploaded. Qwen3-4B's table is
/// 151 936 × 2 560 (0.78 GB in bf16) and a prompt reads a few hundred of its rows, so keeping it
/// on the host frees that much device memory for one small upload per prompt.
enum TokenEmbedding {
    case device(Tensor)
    /// The stored rows (`info.dtype`, plain), converted to `dtype` (nil: as stored) after the
    /// gather, exactly as a load would convert the whole table.
    case host(bytes: UnsafeRawBufferPointer, info: TensorInfo, file: SafetensorsFile, dtype: DType?)

    /// Rows `ids` as `[ids.count, hidden]` on `backend`, in the table's loaded dtype.
    func rows(_ ids: [Int32], backend: any Backend) throws -> Tensor {
        switch self {
        case .device(let table):
            return try table.embedding(backend.tensor(ids: ids, shape: [ids.count]))
        case .host(let bytes, let info, let file, let dtype):
            let vocabulary = info.shape[0], hidden = info.shape.count / max(vocabulary, 1)
            let rowBytes = hidden * info.dtype.byteSize
            var gathered = [UInt8](repeating: 0, count: ids.count * rowBytes)
            try gathered.withUnsafeMutableBytes { target in
                for (row, id) in ids.enumerated() {
                    guard id >= 0, Int(id) < vocabulary, let base = target.baseAddress, let source = bytes.baseAddress,
                          (Int(id) + 1) * rowBytes <= bytes.count else {
                        throw TensorError.invalidArgument(op: "embedding", detail: "token id \(id) outside 0..<\(vocabulary)")
                    }
                    (base + row * rowBytes).copyMemory(from: source + Int(id) * rowBytes, byteCount: rowBytes)
                }
            }
            let stored = try gathered.withUnsafeBytes {
                try backend.upload($0, shape: [ids.count, hidden], dtype: info.dtype)
            }
            withExtendedLifetime(file) {}
            guard let dtype, dtype != info.dtype else { return stored }
            return try stored.cast(to: dtype)
        }
    }
}
