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
    /// Bytes a pinned buffer holds (`ZIMAGE_STAGING_CHUNK_MIB`, 4–512, for measurements).
    static let stagingChunkBytes = environmentInteger("ZIMAGE_STAGING_CHUNK_MIB", in: 4...512, default: 32) << 20
    /// Copying threads per chunk (the page-cache reads are the limit: more threads, more bandwidth;
    /// `ZIMAGE_STAGING_THREADS`, 1–64, for measurements).
    static let stagingThreads = environmentInteger("ZIMAGE_STAGING_THREADS", in: 1...64,
                                                   default: min(16, max(4, ProcessInfo.processInfo.activeProcessorCount)))
    /// `ZIMAGE_STAGED_UPLOAD=0` sends every upload straight to the driver (for comparisons).
    static let stagedUploads = ProcessInfo.processInfo.environment["ZIMAGE_STAGED_UPLOAD"] != "0"

    private static func environmentInteger(_ name: String, in range: ClosedRange<Int>, default value: Int) -> Int {
        guard let text = ProcessInfo.processInfo.environment[name], let number = Int(text), range.contains(number)
        else { return value }
        return number
    }

    /// One line on the staged uploads so far (for the profile), nil when none ran.
    func stagingReport() -> String? {
        guard let staging, staging.sentBytes > 0 else { return nil }
        return String(format: "staged uploads: %.2f GB sent; threads filling %.2f s (%.1f GB/s), waiting on DMA %.2f s "
                      + "(%d threads, %d MiB chunks)", Double(staging.sentBytes) / 1e9, staging.fillSeconds,
                      Double(staging.sentBytes) / 1e9 / max(staging.fillSeconds, 1e-9), staging.waitSeconds,
                      Self.stagingThreads, Self.stagingChunkBytes >> 20)
    }

    /// Two pinned host buffers and the events marking when their last DMA finished.
    final class StagingBuffers {
        let buffers: [UnsafeMutableRawPointer]
        let events: [OpaquePointer?]
        let driver: CUDADriver
        /// Totals over this backend's staged uploads, for the profile: bytes sent, seconds the
        /// threads spent filling buffers, seconds waiting for a buffer's previous DMA.
        var sentBytes = 0, fillSeconds = 0.0, waitSeconds = 0.0
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
        nonisolated(unsafe) let input = source   // mapped tensors need not be 4-byte aligned
        try stagedChunks(byteCount: tensor.count * 2, to: CUdeviceptr(tensor.address), staging: staging,
                         unit: 2, grain: 1 << 19) { buffer, offset, range in
            let output = buffer.assumingMemoryBound(to: UInt16.self)
            var i = range.lowerBound / 2
            let end = range.upperBound / 2, first = offset / 2
            while i < end {
                let bits = input.loadUnaligned(fromByteOffset: (first + i) * 4, as: UInt32.self)
                output[i] = (bits & 0x7fff_ffff) > 0x7f80_0000
                    ? 0x7fc0 : UInt16(truncatingIfNeeded: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
                i += 1
            }
        }
        return tensor
    }

    /// Copies `bytes` to device `address` in chunks through the staging buffers, queued on the
    /// stream (ops queued after it see the data). Returns once every byte is in pinned memory or
    /// on the device, so the caller may release `bytes`.
    func stagedUpload(_ bytes: UnsafeRawBufferPointer, to address: CUdeviceptr, staging: StagingBuffers) throws {
        guard let source = bytes.baseAddress else { return }
        nonisolated(unsafe) let origin = source
        try stagedChunks(byteCount: bytes.count, to: address, staging: staging, unit: 1, grain: 1 << 20) {
            buffer, offset, range in
            (buffer + range.lowerBound).copyMemory(from: origin + offset + range.lowerBound, byteCount: range.count)
        }
    }

    /// The chunk loop both staged uploads share: `byteCount` device bytes at `address`, a chunk at
    /// a time into the pinned buffer whose last DMA has finished, filled by up to `stagingThreads`
    /// parts (`fill(buffer, chunk offset, byte range within the chunk)`, ranges in multiples of
    /// `unit`, at least `grain` bytes a thread), then sent with an asynchronous copy while the next
    /// chunk fills the other buffer.
    private func stagedChunks(byteCount: Int, to address: CUdeviceptr, staging: StagingBuffers, unit: Int, grain: Int,
                              fill: @Sendable (UnsafeMutableRawPointer, Int, Range<Int>) -> Void) throws {
        var offset = 0, index = 0
        while offset < byteCount {
            let count = min(Self.stagingChunkBytes, byteCount - offset)
            let buffer = staging.buffers[index % 2], event = staging.events[index % 2]
            let waitStart = DispatchTime.now().uptimeNanoseconds
            try driver.check(driver.cuEventSynchronize(event), "cuEventSynchronize")
            let fillStart = DispatchTime.now().uptimeNanoseconds
            let threads = min(Self.stagingThreads, max(1, count / grain))
            let slice = (count / unit + threads - 1) / threads * unit
            nonisolated(unsafe) let target = buffer
            let chunkOffset = offset
            DispatchQueue.concurrentPerform(iterations: threads) { part in
                let start = part * slice, end = min(count, start + slice)
                if start < end { fill(target, chunkOffset, start..<end) }
            }
            let fillEnd = DispatchTime.now().uptimeNanoseconds
            staging.waitSeconds += Double(fillStart - waitStart) / 1e9
            staging.fillSeconds += Double(fillEnd - fillStart) / 1e9
            staging.sentBytes += count
            try driver.check(driver.cuMemcpyHtoDAsync(address + CUdeviceptr(offset), buffer, count, stream),
                             "cuMemcpyHtoDAsync")
            try driver.check(driver.cuEventRecord(event, stream), "cuEventRecord")
            offset += count
            index += 1
        }
    }
}
