import Dispatch

/// Splits `0..<count` into contiguous chunks of at least `minimumChunk` items and runs them on up
/// to `threads` threads. Runs inline when there is only one chunk.
@inline(__always)
func parallelFor(_ count: Int, threads: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let chunks = max(1, min(threads, count / max(minimumChunk, 1)))
    if chunks == 1 {
        body(0..<count)
        return
    }
    let base = count / chunks, extra = count % chunks
    // The chunks touch disjoint ranges of the caller's buffers, so sharing `body` is safe.
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let work = body
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = chunk * base + min(chunk, extra)
            let end = start + base + (chunk < extra ? 1 : 0)
            work(start..<end)
        }
    }
}
