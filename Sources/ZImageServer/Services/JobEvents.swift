import Foundation
import NIOConcurrencyHelpers

/// One event of a job, as sent to server-sent-event listeners.
public struct JobEvent: Sendable {
    public enum Kind: String, Sendable { case queued, started, progress, done, failed, cancelled }
    public var kind: Kind
    /// JSON object text for the `data:` line.
    public var data: String
    public var isTerminal: Bool { kind == .done || kind == .failed || kind == .cancelled }
}

/// Fans job events out to any number of listeners, and remembers each running job's latest
/// progress (for `/sdapi/v1/progress` and for listeners that join late).
public final class JobEvents: Sendable {
    private struct State {
        var listeners: [String: [UUID: AsyncStream<JobEvent>.Continuation]] = [:]
        var latest: [String: JobEvent] = [:]
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    /// A stream of `jobId`'s future events, finished after a terminal one.
    public func subscribe(_ jobId: String) -> AsyncStream<JobEvent> {
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let key = UUID()
        state.withLockedValue { $0.listeners[jobId, default: [:]][key] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLockedValue { value in
                value.listeners[jobId]?[key] = nil
                if value.listeners[jobId]?.isEmpty == true { value.listeners[jobId] = nil }
            }
        }
        return stream
    }

    public func publish(_ jobId: String, _ event: JobEvent) {
        let targets = state.withLockedValue { value -> [AsyncStream<JobEvent>.Continuation] in
            if event.kind == .progress || event.kind == .started { value.latest[jobId] = event }
            if event.isTerminal { value.latest[jobId] = nil }
            return Array(value.listeners[jobId]?.values ?? [:].values)
        }
        for target in targets {
            target.yield(event)
            if event.isTerminal { target.finish() }
        }
    }

    /// The last progress event of a running job.
    public func latest(_ jobId: String) -> JobEvent? { state.withLockedValue { $0.latest[jobId] } }
}
