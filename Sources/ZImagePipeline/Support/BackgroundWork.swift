import Foundation

/// Work started on its own thread now and waited for later (`result()`): the pipeline parses the
/// tokenizer (≈ 0.6 s for Qwen's 11 MB tokenizer.json) while the weights upload.
final class BackgroundWork<Value: Sendable>: @unchecked Sendable {
    // `outcome` is written once by the worker before `done` is signalled, read after the wait.
    private var outcome: Result<Value, any Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ work: @escaping @Sendable () throws -> Value) {
        Thread.detachNewThread { [self] in
            outcome = Result { try work() }
            done.signal()
        }
    }

    /// Waits for the work and returns its value, or throws its error.
    func result() throws -> Value {
        done.wait()
        done.signal()   // a second call returns at once
        guard let outcome else { throw CancellationError() }
        return try outcome.get()
    }
}
