import Dispatch
import Foundation
import ZImageTensor

// Host → device copies of large tensors (the weights at load) through pinned staging buffers:
// a copy from pageable memory (the memory-mapped checkpoint) goes through the driver's own small
// staging at a few GB/s; here several threads copy each chunk into one of two pinned buffers
// (touching the mapped pages in parallel) while the other buffer's DMA runs.
extension CUDABackend {
    /// Uploads at least this large are staged (smaller ones go straight to the driver).
    static let stagedUploadMinimum = 4 << 20
    static let stagingChunkBytes = 32 << 20
    /// Copying threads per chunk (the page-cache reads are the limit: more threads, more bandwidth).
    static let stagingThreads = min(16, max(4, ProcessInfo.processInfo.activeProcessorCount))
    /// `ZIMAGE_STAGED_UPLOAD=0` sends every upload straight to the driver (for comparisons).
    static let stagedUploads = ProcessInfo.processInfo.environment["ZIMAGE_STAGED_UPLOAD"] != "0"

    /// Two pinned host buffers and the events marking when their last DMA finished.
    final class StagingBuffers {
        let buffers: [UnsafeMutableRawPointer]
        let events: [OpaquePointer?]
        let driver: CUDADriver
        init(driver: CUDADriver, bytes: Int) throws {
            self.driver = driver
            var buffers: [UnsafeMutableRawPointer] = [], events: [OpaquePointer?] = []
            do {
                for _ in 0..<2 {
                    var host: UnsafeMutableRawPointer?
                    try driver.check(driver.cuMemHostAlloc(&host, bytes, 0), "cuMemHostAlloc")
                    guard let host else { throw CUDAError.unsupported("cuMemHostAlloc returned no memory") }
                    buffers.append(host)
                    var event: OpaquePointer?
                    try driver.check(driver.cuEventCreate(&event, 2), "cuEventCreate")   // CU_EVENT_DISABLE_TIMING
                    events.append(event)
                }
            } catch {
                buffers.forEach { _ = driver.cuMemFreeHost($0) }
                events.forEach { _ = driver.cuEventDestroy($0) }
                throw error
            }
            (self.buffers, self.events) = (buffers, events)
        }
        deinit {
            events.forEach { _ = driver.cuEventSynchronize($0); _ = driver.cuEventDestroy($0) }
            buffers.forEach { _ = driver.cuMemFreeHost($0) }
        }
    }

    /// Staged float32 → bfloat16 uploads: each thread rounds its part of a chunk into the pinned
    /// buffer (nearest even, NaN → 0x7FC0, as `HalfPrecision.bfloat16Bits` and the cast kernel).
    public func upload(_ bytes: UnsafeRawBufferPointer, shape: Shape, converting from: DType,
                       to: DType) throws -> Tensor? {
        guard Self.stagedUploads, from == .float32, to == .bfloat16, bytes.count >= Self.stagedUploadMinimum,
              let source = bytes.baseAddress, let staging = try? stagingBuffers() else { return nil }
        let tensor = try allocate(shape: shape, dtype: .bfloat16)
        guard bytes.count == tensor.count * 4 else {
            throw TensorError.shapeMismatch(op: "upload", detail: "\(bytes.count) bytes for \(shape) float32")
        }
        let chunk = Self.stagingChunkBytes / 2   // elements a chunk (bf16 fills the buffer)
        var done = 0, index = 0
        while done < tensor.count {
            let count = min(chunk, tensor.count - done)
            let buffer = staging.buffers[index % 2], event = staging.events[index % 2]
            try driver.check(driver.cuEventSynchronize(event), "cuEventSynchronize")
            let threads = min(Self.stagingThreads, max(1, count / (1 << 18)))
            let slice = (count + threads - 1) / threads
            nonisolated(unsafe) let input = source + done * 4   // mapped tensors need not be 4-byte aligned
            nonisolated(unsafe) let output = buffer.assumingMemoryBound(to: UInt16.self)
            DispatchQueue.concurrentPerform(iterations: threads) { part in
                let start = part * slice, end = min(count, start + slice)
                var i = start
                while i < end {
                    let bits = input.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)
                    output[i] = (bits & 0x7fff_ffff) > 0x7f80_0000
                        ? 0x7fc0 : UInt16(truncatingIfNeeded: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
                    i += 1
                }
            }
            try driver.check(driver.cuMemcpyHtoDAsync(CUdeviceptr(tensor.address) + CUdeviceptr(done * 2), buffer,
                                                      count * 2, stream), "cuMemcpyHtoDAsync")
            try driver.check(driver.cuEventRecord(event, stream), "cuEventRecord")
            done += count
            index += 1
        }
        return tensor
    }

    /// Copies `bytes` to device `address` in chunks through the staging buffers, queued on the
    /// stream (ops queued after it see the data). Returns once every byte is in pinned memory or
    /// on the device, so the caller may release `bytes`.
    func stagedUpload(_ bytes: UnsafeRawBufferPointer, to address: CUdeviceptr, staging: StagingBuffers) throws {
        guard let source = bytes.baseAddress else { return }
        var offset = 0, index = 0
        while offset < bytes.count {
            let count = min(Self.stagingChunkBytes, bytes.count - offset)
            let buffer = staging.buffers[index % 2], event = staging.events[index % 2]
            try driver.check(driver.cuEventSynchronize(event), "cuEventSynchronize")
            let from = source + offset
            let threads = min(Self.stagingThreads, max(1, count / (1 << 20)))
            let slice = (count + threads - 1) / threads
            nonisolated(unsafe) let (to, origin) = (buffer, from)
            DispatchQueue.concurrentPerform(iterations: threads) { part in
                let start = part * slice, end = min(count, start + slice)
                if start < end { (to + start).copyMemory(from: origin + start, byteCount: end - start) }
            }
            try driver.check(driver.cuMemcpyHtoDAsync(address + CUdeviceptr(offset), buffer, count, stream),
                             "cuMemcpyHtoDAsync")
            try driver.check(driver.cuEventRecord(event, stream), "cuEventRecord")
            offset += count
            index += 1
        }
    }
}
