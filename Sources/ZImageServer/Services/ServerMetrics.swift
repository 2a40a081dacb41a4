import Prometheus

/// Prometheus metrics served at `/metrics`.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let queueLength: Gauge
    let completed: Counter, failed: Counter, cancelled: Counter, rejected: Counter
    let jobSeconds: DurationHistogram, stepSeconds: DurationHistogram
    let requests: Counter

    public init() {
        queueLength = registry.makeGauge(name: "zimage_queue_length", help: "Jobs waiting in the queue")
        completed = registry.makeCounter(name: "zimage_jobs_completed_total", help: "Generations finished")
        failed = registry.makeCounter(name: "zimage_jobs_failed_total", help: "Generations that failed")
        cancelled = registry.makeCounter(name: "zimage_jobs_cancelled_total", help: "Generations cancelled while running")
        rejected = registry.makeCounter(name: "zimage_jobs_rejected_total", help: "Submissions refused (queue full)")
        let buckets: [Duration] = [.milliseconds(50), .milliseconds(200), .seconds(1), .seconds(2), .seconds(5),
                                   .seconds(10), .seconds(30), .seconds(60), .seconds(300)]
        jobSeconds = registry.makeDurationHistogram(name: "zimage_job_duration_seconds", buckets: buckets,
                                                    help: "Time from start to finish of a generation")
        stepSeconds = registry.makeDurationHistogram(name: "zimage_step_duration_seconds", buckets: buckets,
                                                     help: "Time of one denoising step")
        requests = registry.makeCounter(name: "zimage_http_requests_total", help: "HTTP requests served")
    }

    /// The text exposition format.
    public func render() -> String { registry.emitToString() }
}

extension DurationHistogram {
    func recordSeconds(_ seconds: Double) { record(.nanoseconds(Int64(seconds * 1e9))) }
}
