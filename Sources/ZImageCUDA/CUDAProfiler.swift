import Foundation
import ZImageTensor

/// Times every op the backend queues with a pair of CUDA events, grouped by stage (named by
/// `Backend.beginStage`) and op kind, and measures each stage's wall time (the stream is drained
/// at each stage boundary). Ops an op runs inside itself count toward the outer op. Switched on
/// by `ZIMAGE_PROFILE=1` or `CUDABackend.startProfiling()`; `report()` prints the table.
public final class CUDAProfiler {
    struct Record {
        let stage: Int, op: String
        let start: OpaquePointer?, end: OpaquePointer?
    }
    private let driver: CUDADriver
    private var records: [Record] = []
    private(set) var stages: [(name: String, wall: Double)] = []
    private var stageStart = Date()
    var depth = 0

    init(driver: CUDADriver) { self.driver = driver }

    /// Starts stage `name` (after draining the stream, so wall times are the stage's own).
    func begin(stage name: String, synchronize: () throws -> Void) {
        try? synchronize()
        let now = Date()
        if !stages.isEmpty { stages[stages.count - 1].wall = now.timeIntervalSince(stageStart) * 1000 }
        stages.append((name, 0))
        stageStart = now
    }

    func record(_ op: String, stream: OpaquePointer?, _ body: () throws -> Void) throws {
        if stages.isEmpty { stages.append(("setup", 0)) }
        var start: OpaquePointer?, end: OpaquePointer?
        try driver.check(driver.cuEventCreate(&start, 0), "cuEventCreate")
        try driver.check(driver.cuEventCreate(&end, 0), "cuEventCreate")
        try driver.check(driver.cuEventRecord(start, stream), "cuEventRecord")
        depth += 1
        defer { depth -= 1 }
        try body()
        try driver.check(driver.cuEventRecord(end, stream), "cuEventRecord")
        records.append(Record(stage: stages.count - 1, op: op, start: start, end: end))
    }

    /// The table: per stage, GPU milliseconds by op kind, the GPU total and the stage's wall time.
    /// Steps after the first are summed into one "steps 2-N (each)" row to keep it short.
    public func report(synchronize: () throws -> Void) -> String {
        try? synchronize()
        if !stages.isEmpty { stages[stages.count - 1].wall = Date().timeIntervalSince(stageStart) * 1000 }
        var byStage: [[String: (ms: Double, count: Int)]] = Array(repeating: [:], count: stages.count)
        for record in records {
            var ms: Float = 0
            if driver.cuEventElapsedTime(&ms, record.start, record.end) == 0 {
                byStage[record.stage][record.op, default: (0, 0)].ms += Double(ms)
                byStage[record.stage][record.op, default: (0, 0)].count += 1
            }
            _ = driver.cuEventDestroy(record.start)
            _ = driver.cuEventDestroy(record.end)
        }
        records = []
        // Fold "step 2" ... "step N" into one averaged row.
        var rows: [(name: String, ops: [String: (ms: Double, count: Int)], wall: Double)] = []
        var laterSteps: [String: (ms: Double, count: Int)] = [:], laterWall = 0.0, laterCount = 0
        for (index, stage) in stages.enumerated() {
            if stage.name.hasPrefix("step "), stage.name != "step 1" {
                for (op, value) in byStage[index] {
                    laterSteps[op, default: (0, 0)].ms += value.ms
                    laterSteps[op, default: (0, 0)].count += value.count
                }
                laterWall += stage.wall
                laterCount += 1
            } else {
                rows.append((stage.name, byStage[index], stage.wall))
            }
        }
        if laterCount > 0 {
            let each = laterSteps.mapValues { (ms: $0.ms / Double(laterCount), count: $0.count / laterCount) }
            let at = rows.firstIndex { $0.name == "step 1" }.map { $0 + 1 } ?? rows.count
            rows.insert(("steps 2-\(laterCount + 1) (each)", each, laterWall / Double(laterCount)), at: at)
        }
        var totals: [String: Double] = [:]
        for row in rows { for (op, value) in row.ops { totals[op, default: 0] += value.ms } }
        let ops = totals.keys.sorted { totals[$0] ?? 0 > totals[$1] ?? 0 }
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        var lines = ["profile (ms; GPU time by op kind from CUDA events, wall = host clock per stage)"]
        for row in rows {
            let gpu = row.ops.values.reduce(0) { $0 + $1.ms }
            lines.append("\(row.name): wall " + String(format: "%.2f", row.wall) + ", GPU " + String(format: "%.2f", gpu))
            for op in ops {
                guard let value = row.ops[op], value.ms > 0.005 else { continue }
                lines.append("    " + pad(op, 22) + String(format: "%9.3f  (%d launches)", value.ms, value.count))
            }
        }
        return lines.joined(separator: "\n")
    }
}
