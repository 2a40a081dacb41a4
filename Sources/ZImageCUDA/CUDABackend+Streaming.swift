import ZImageTensor

// Block streaming: weights in pinned host memory, copied into a layer's device slot on a second
// stream while the compute stream runs the layer before it. Two events order the streams: the
// copies wait for a mark of the compute work queued before them (the slot's previous layer, and
// any freed memory the pool may hand out again), and the compute stream waits for the copies'
// fence only where the layer runs.
extension CUDABackend: WeightStreaming {
    public func makeHostWeightBuffer(byteCount: Int) throws -> HostWeightBuffer {
        try makeCurrent()
        var host: UnsafeMutableRawPointer?
        try driver.check(driver.cuMemHostAlloc(&host, max(byteCount, 1), 0), "cuMemHostAlloc(\(byteCount))")
        guard let host else { throw CUDAError.unsupported("cuMemHostAlloc returned no memory") }
        let driver = self.driver
        return HostWeightBuffer(base: host, byteCount: byteCount, isPinned: true) { _ = driver.cuMemFreeHost($0) }
    }

    public func makeCopyFence() throws -> CopyFence {
        try makeCurrent()
        var event: OpaquePointer?
        try driver.check(driver.cuEventCreate(&event, 2), "cuEventCreate")   // CU_EVENT_DISABLE_TIMING
        let driver = self.driver
        return CopyFence(handle: event) { _ = driver.cuEventDestroy($0) }
    }

    public func queueCopies(_ copies: [(source: UnsafeRawPointer, tensor: Tensor)], signalling fence: CopyFence) throws {
        try makeCurrent()
        let (copy, mark) = try streamingStreams()
        try driver.check(driver.cuEventRecord(mark, stream), "cuEventRecord")
        try driver.check(driver.cuStreamWaitEvent(copy, mark, 0), "cuStreamWaitEvent")
        for (source, tensor) in copies where tensor.byteCount > 0 {
            guard tensor.backend === self else {
                throw TensorError.invalidArgument(op: "queueCopies", detail: "\(tensor) is not on \(device)")
            }
            try driver.check(driver.cuMemcpyHtoDAsync(CUdeviceptr(tensor.address), source, tensor.byteCount, copy),
                             "cuMemcpyHtoDAsync")
        }
        try driver.check(driver.cuEventRecord(fence.handle, copy), "cuEventRecord")
    }

    public func waitForCopies(_ fence: CopyFence) throws {
        try makeCurrent()
        try driver.check(driver.cuStreamWaitEvent(stream, fence.handle, 0), "cuStreamWaitEvent")
    }

    /// The copy stream and the compute-mark event, made on first use.
    private func streamingStreams() throws -> (OpaquePointer?, OpaquePointer?) {
        if let copyStream { return copyStream }
        var created: OpaquePointer?, mark: OpaquePointer?
        try driver.check(driver.cuStreamCreate(&created, 1), "cuStreamCreate")   // CU_STREAM_NON_BLOCKING
        try driver.check(driver.cuEventCreate(&mark, 2), "cuEventCreate")
        copyStream = (created, mark)
        return (created, mark)
    }
}
