import COpenBLAS
import Foundation
import ZImageTensor

/// The CPU backend: OpenBLAS for matrix products and convolutions, multithreaded loops for the rest.
///
/// All arithmetic is float32. bfloat16 and float16 tensors are widened on the fly, and weights in
/// those types are widened a block of rows at a time inside `matmul`, so a model never keeps a full
/// float32 copy of its weights. Work runs synchronously on the calling thread and `threads` helpers.
public final class CPUBackend: Backend, HostMemoryBorrowing {
    /// See `Backend.device`.
    public let device = Device.cpu
    /// Threads used by the loops and by OpenBLAS.
    public let threads: Int

    /// Float32 elements of scratch an op may use at once (convolution columns, attention scores);
    /// larger problems are processed in bands.
    public let scratchElements: Int

    /// - Parameters:
    ///   - threads: worker threads; defaults to the number of active processors.
    ///   - scratchElements: scratch budget per op in float32 elements (default 16 Mi = 64 MiB).
    public init(threads: Int? = nil, scratchElements: Int = 16 << 20) {
        let count = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        self.threads = count
        self.scratchElements = max(1, scratchElements)
        openblas_set_num_threads(Int32(count))
    }

    // MARK: Memory

    /// See `Backend.allocate`.
    public func allocate(shape: Shape, dtype: DType) throws -> Tensor {
        guard let count = Shape.checkedCount(shape.dims) else {
            throw TensorError.invalidArgument(op: "allocate", detail: "invalid shape \(shape)")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw TensorError.outOfMemory(device: .cpu, requestedBytes: .max, freeBytes: nil) }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, max(bytes, 1)) == 0, let raw else {
            throw TensorError.outOfMemory(device: .cpu, requestedBytes: bytes, freeBytes: nil)
        }
        let storage = TensorStorage(backend: self, address: UInt(bitPattern: raw), byteCount: max(bytes, 1))
        return Tensor(storage: storage, shape: shape, dtype: dtype)
    }

    /// See `Backend.release`.
    public func release(address: UInt, byteCount: Int) {
        free(UnsafeMutableRawPointer(bitPattern: address))
    }

    /// See `Backend.upload`.
    public func upload(_ bytes: UnsafeRawBufferPointer, shape: Shape, dtype: DType) throws -> Tensor {
        let tensor = try allocate(shape: shape, dtype: dtype)
        guard bytes.count == tensor.byteCount else {
            throw TensorError.shapeMismatch(op: "upload", detail: "\(bytes.count) bytes for \(shape) \(dtype)")
        }
        if let base = bytes.baseAddress, bytes.count > 0 { tensor.hostPointer.copyMemory(from: base, byteCount: bytes.count) }
        return tensor
    }

    /// See `Backend.download`.
    public func download(_ tensor: Tensor, into destination: UnsafeMutableRawBufferPointer) throws {
        guard destination.count == tensor.byteCount else {
            throw TensorError.shapeMismatch(op: "download", detail: "\(destination.count) bytes for \(tensor)")
        }
        if let base = destination.baseAddress, tensor.byteCount > 0 {
            base.copyMemory(from: tensor.hostPointer, byteCount: tensor.byteCount)
        }
    }

    /// See `Backend.synchronize`.
    public func synchronize() throws {}

    /// Wraps host memory owned by `owner` (a memory-mapped file) as a tensor without copying.
    public func borrow(address: UnsafeRawPointer, shape: Shape, dtype: DType, owner: AnyObject) -> Tensor {
        let storage = TensorStorage(backend: self, borrowing: UInt(bitPattern: address),
                                    byteCount: max(shape.count * dtype.byteSize, 1), owner: owner)
        return Tensor(storage: storage, shape: shape, dtype: dtype)
    }

    // MARK: Helpers shared by the op files

    func checkCompute(_ op: String, _ tensors: Tensor?...) throws {
        for case let tensor? in tensors where !tensor.dtype.isComputeType {
            throw TensorError.unsupportedDType(op: op, dtype: tensor.dtype)
        }
    }

    func input(_ tensor: Tensor, _ op: String) throws -> FloatInput {
        try FloatInput(tensor, threads: threads, op: op)
    }

    func output(_ shape: Shape, _ dtype: DType) throws -> FloatOutput {
        FloatOutput(try allocate(shape: shape, dtype: dtype), threads: threads)
    }
}
