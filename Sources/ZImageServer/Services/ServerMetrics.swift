import Prometheus
import ZImageTensor

/// Prometheus metrics served at `/metrics`.
public final class ServerMetrics: Sendable {
    /// The collectors, rendered in the text format at `/metrics`.
    public let registry = PrometheusCollectorRegistry()
    let queueLength: Gauge
    let completed: Counter, failed: Counter, cancelled: Counter, rejected: Counter
    let jobSeconds: DurationHistogram, stepSeconds: DurationHistogram
    let requests: Counter
    /// Time jobs waited between submission and their start (every node's jobs that this node started).
    let queueWaitSeconds: DurationHistogram

    /// Registers every metric, at zero.
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
        queueWaitSeconds = registry.makeDurationHistogram(name: "zimage_queue_wait_seconds", buckets: buckets,
                                                          help: "Time a job waited in the queue before a worker started it")
        running = registry.makeGauge(name: "zimage_jobs_running", help: "Jobs running on any node")
    }

    /// Jobs running on every node sharing the store.
    let running: Gauge

    /// Jobs finished by one worker (`worker` is `node/N`; sum by `node` for a node's throughput).
    func workerCompleted(_ worker: String) -> Counter {
        registry.makeCounter(name: "zimage_worker_jobs_completed_total", labels: Self.labels(worker),
                             help: "Generations finished by this worker")
    }

    /// Engine failures (out of memory, driver errors) of one worker, each followed by a rebuild.
    func workerFailures(_ worker: String) -> Counter {
        registry.makeCounter(name: "zimage_worker_engine_failures_total", labels: Self.labels(worker),
                             help: "Engine failures of this worker (each followed by a rebuild)")
    }

    /// Per-worker gauges, set from the workers' states before each scrape.
    func record(_ statuses: [WorkerStatus]) {
        for status in statuses {
            // Counters exist (at 0) from a worker's first scrape, as Prometheus expects, so a node
            // that has finished nothing yet still reports them.
            _ = workerCompleted(status.id)
            _ = workerFailures(status.id)
            let labels = Self.labels(status.id) + [("device", status.device)]
            registry.makeGauge(name: "zimage_worker_busy", labels: labels, help: "1 while this worker runs a job")
                .record(Int64(status.state == .running ? 1 : 0))
            registry.makeGauge(name: "zimage_worker_up", labels: labels,
                               help: "1 while this worker has a working engine (0 while rebuilding or broken)")
                .record(Int64(status.state == .running || status.state == .idle ? 1 : 0))
            if let seconds = status.lastStepSeconds {
                registry.makeGauge(name: "zimage_worker_last_step_seconds", labels: labels,
                                   help: "Seconds of this worker's last denoising step").record(seconds)
            }
            if let memory = status.memory {
                registry.makeGauge(name: "zimage_worker_memory_used_bytes", labels: labels,
                                   help: "Device memory this worker's pool holds (tensors and cache)").record(Int64(memory.used))
            }
            if let report = status.deviceMemory {
                registry.makeGauge(name: "zimage_worker_memory_peak_bytes", labels: labels,
                                   help: "Most device memory this worker's tensors held at once during its last job")
                    .record(Int64(report.poolPeakInUseBytes))
                registry.makeGauge(name: "zimage_worker_memory_peak_reserved_bytes", labels: labels,
                                   help: "Most device memory this worker's pool held from the driver during its last job")
                    .record(Int64(report.poolPeakReservedBytes))
            }
        }
    }

    /// Per-GPU gauges from the live readings (NVML); a reading the card does not give is left out.
    func record(_ gpus: [GPUStatistics]) {
        for gpu in gpus {
            let labels = [("gpu", String(gpu.index)), ("name", gpu.name)]
            func gauge(_ name: String, _ help: String, _ value: Double?) {
                guard let value else { return }
                registry.makeGauge(name: name, labels: labels, help: help).record(value)
            }
            gauge("zimage_gpu_memory_used_bytes", "GPU memory in use (every process), from NVML", gpu.memoryUsedBytes.map(Double.init))
            gauge("zimage_gpu_memory_free_bytes", "GPU memory free, from NVML", gpu.memoryFreeBytes.map(Double.init))
            gauge("zimage_gpu_memory_total_bytes", "GPU memory in total, from NVML", gpu.memoryTotalBytes.map(Double.init))
            gauge("zimage_gpu_utilization_ratio", "Share of time a kernel ran (0 to 1)", gpu.utilizationPercent.map { Double($0) / 100 })
            gauge("zimage_gpu_memory_utilization_ratio", "Share of time device memory was busy (0 to 1)",
                  gpu.memoryUtilizationPercent.map { Double($0) / 100 })
            gauge("zimage_gpu_power_watts", "Power draw", gpu.powerDrawWatts)
            gauge("zimage_gpu_power_limit_watts", "Enforced power limit", gpu.powerLimitWatts)
            gauge("zimage_gpu_temperature_celsius", "GPU temperature", gpu.temperatureCelsius.map(Double.init))
            gauge("zimage_gpu_sm_clock_hertz", "SM clock", gpu.smClockMHz.map { Double($0) * 1e6 })
            gauge("zimage_gpu_memory_clock_hertz", "Memory clock", gpu.memoryClockMHz.map { Double($0) * 1e6 })
        }
    }

    /// `node` and `worker` labels from a worker id `node/N`.
    static func labels(_ worker: String) -> [(String, String)] {
        let node = worker.split(separator: "/").dropLast().joined(separator: "/")
        return [("node", node), ("worker", worker)]
    }

    /// The text exposition format.
    public func render() -> String { registry.emitToString() }
}

extension DurationHistogram {
    func recordSeconds(_ seconds: Double) { record(.nanoseconds(Int64(seconds * 1e9))) }
}
