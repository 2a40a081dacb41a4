import ArgumentParser
import ZImageCUDA
import ZImageTensor

/// `zimage devices`: the compute devices this machine offers.
public struct DevicesCommand: ParsableCommand {
    /// The subcommand's name, abstract and help text.
    public static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the CPU and any CUDA GPUs zimage can use, with live readings (memory, utilisation, power, temperature, clocks) where NVML is installed."
    )

    /// An empty command; ArgumentParser fills in the options.
    public init() {}

    /// Runs the command.
    public func run() throws {
        print("cpu: available")
        do {
            let devices = try CUDADriver.shared().devices()
            if devices.isEmpty { print("cuda: driver found, no GPU") }
            for device in devices {
                print("cuda:\(device.ordinal): \(device.name), compute capability \(device.computeCapability.major)."
                    + "\(device.computeCapability.minor), \(device.multiprocessors) SMs, "
                    + ByteCount.format(device.totalMemory))
            }
        } catch {
            print("cuda: unavailable: \(error)")
        }
        // Live readings (NVML index order); silent where NVML is not installed.
        for gpu in NVML.shared?.statistics() ?? [] {
            print("nvml:\(gpu.index): \(gpu.name): \(gpu.summary)")
        }
    }
}
