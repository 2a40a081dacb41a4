import Foundation
import NIOConcurrencyHelpers

/// Where a running job is, as a typed value (the SSE `progress` event, `/sdapi/v1/progress`, the
/// job object's `progress`).
public struct JobProgress: Sendable, Equatable {
    /// Completed steps of the current image, and the steps per image.
    public var step: Int, steps: Int
    /// The current image (0-based) and the images of the job.
    public var image: Int, images: Int
    /// A small PNG of the current latents, on preview steps.
    public var previewPNG: [UInt8]?

    /// The fields without the preview (the job object's `progress`).
    var counts: [String: Any] { ["step": step, "steps": steps, "image": image, "images": images] }
}

/// One event of a job, as sent to server-sent-event listeners.
public struct JobEvent: Sendable {
    /// What happened to the job (the SSE `event:` name).
    public enum Kind: String, Sendable { case queued, started, progress, done, failed, cancelled }
    /// What an event carries besides its kind.
    public enum Payload: Sendable {
        /// Nothing more.
        case none
        /// The job's place in the queue.
        case position(Int)
        /// Steps done, and the latest preview.
        case progress(JobProgress)
        /// The finished job object, already JSON text.
        case job(String)
        /// Why the job failed.
        case error(String)
    }
    /// What happened.
    public var kind: Kind
    /// What the event carries.
    public var payload: Payload

    /// An event of `kind` carrying `payload`.
    public init(kind: Kind, payload: Payload = .none) { (self.kind, self.payload) = (kind, payload) }

    /// Whether the job ends with this event (done, failed or cancelled).
    public var isTerminal: Bool { kind == .done || kind == .failed || kind == .cancelled }

    /// The progress, for a progress event.
    public var progress: JobProgress? { if case .progress(let value) = payload { value } else { nil } }

    /// JSON object text for the `data:` line.
    public var data: String {
        switch payload {
        case .none: return "{}"
        case .position(let position): return SafeJSON.string(["position": position])
        case .progress(let progress):
            var object = progress.counts
            object["preview"] = progress.previewPNG.map { "data:image/png;base64," + Data($0).base64EncodedString() } ?? NSNull()
            return SafeJSON.string(object)
        case .job(let text): return text
        case .error(let message): return SafeJSON.string(["error": message])
        }
    }
}

/// Fans job events out to any number of listeners, and remembers each running job's latest
/// progress (for `/sdapi/v1/progress` and for listeners that join late).
public final class JobEvents: Sendable {
    private struct State {
        var listeners: [String: [UUID: AsyncStream<JobEvent>.Continuation]] = [:]
        var latest: [String: JobEvent] = [:]
    }
    private let state = NIOLockedValueBox(State())

    /// No listeners and no progress yet.
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

    /// Sends `event` to `jobId`'s listeners (remembering progress and starts as the latest; a
    /// terminal event forgets the job and finishes its streams).
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

    /// The jobs someone listens to now.
    public var listenedJobIDs: [String] { state.withLockedValue { Array($0.listeners.keys) } }

    /// The last progress or start event of a running job.
    public func latest(_ jobId: String) -> JobEvent? { state.withLockedValue { $0.latest[jobId] } }

    /// The last progress of a running job.
    public func latestProgress(_ jobId: String) -> JobProgress? { latest(jobId)?.progress }
}
