import Foundation
import Testing
@testable import ZImageCLI

/// `zimage serve --devices/--database/--node-name/--lease-seconds` (issue 12).
@Suite struct ServeWorkersCommandTests {
    @Test func devicesListsOneWorkerPerEntry() throws {
        #expect(try ServeCommand.parse(["--devices", "cuda:0,cuda:1"]).workerDevices() == [.cuda(0), .cuda(1)])
        #expect(try ServeCommand.parse(["--devices", "cpu,cpu"]).workerDevices() == [.cpu, .cpu])
        #expect(try ServeCommand.parse(["--device", "cpu"]).workerDevices() == [.cpu], "--device names the one device")
        // `all` (and the default) is every GPU, else the CPU: this machine has no GPU in CI.
        let all = try ServeCommand.parse(["--devices", "all"]).workerDevices()
        #expect(!all.isEmpty && (all == [.cpu] || all.allSatisfy { if case .cuda = $0 { true } else { false } }))
        #expect(try ServeCommand.parse([]).workerDevices() == all)
    }

    @Test func badDevicesAndDatabasesAreRefusedAtStart() {
        for flags in [["--devices", "cpu,tpu"], ["--devices", ""], ["--devices", "cpu,"], ["--devices", "cuda:x"],
                      ["--database", "mysql://db/x"], ["--database", "postgres://db/x?sslmode=sometimes"],
                      ["--lease-seconds", "0"], ["--lease-seconds", "nan"], ["--node-name", "a/b"], ["--node-name", ""]] {
            #expect(throws: (any Error).self, "\(flags)") { try ServeCommand.parse(flags) }
        }
        #expect((try? ServeCommand.parse(["--database", "postgres://u:p@127.0.0.1:5433/zimage?sslmode=disable",
                                          "--node-name", "gpu-01", "--lease-seconds", "10"])) != nil)
    }
}
