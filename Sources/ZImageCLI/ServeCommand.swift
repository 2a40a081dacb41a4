import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ZImageCPU
import ZImageCUDA
import ZImageHub
import NIOConcurrencyHelpers
import ZImagePipeline
import ZImagePlanner
import ZImageServer

/// `zimage serve`: the web UI and the HTTP APIs.
public struct ServeCommand: AsyncParsableCommand {
    /// The subcommand's name, abstract and help text.
    public static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the web UI, the native JSON API and A1111/OpenAI-compatible APIs.",
        discussion: """
            Binds to 127.0.0.1 unless --host says otherwise. With --api-key every request needs the key \
            (Authorization: Bearer KEY, or HTTP Basic with the key as password). Jobs, images and history \
            live in --data-dir and survive restarts.
            """
    )

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port.") var port = 7860
    @Option(help: "Folder for the job database and images (default: ~/.local/share/zimage).") var dataDir: String?
    @Option(help: "Require this API key on every request (printable ASCII, not empty).") var apiKey: String?
    @Option(help: "Most jobs waiting in the queue; more are refused with 429.") var maxQueue = 32
    @Option(help: "Serve the web UI from this folder instead of the bundled one.") var publicDir: String?
    @Option(help: "The URL clients reach this server at (http://host:port), for image URLs; default: the bound address.")
    var publicURL: String?
    @Option(help: "Seconds a connection may stay idle between requests (1 to 3600).") var idleTimeout: Double = 30
    @Option(help: "Most open connections (default: from the descriptor limit, ulimit -n).") var maxConnections: Int?
    @Option(help: """
        Devices to run one worker each on: all (every GPU, else the CPU), cpu, or a list such as cuda:0,cuda:1 \
        (cpu,cpu runs two CPU workers sharing the cores). Default: --device when given, else all.
        """)
    var devices: String?
    @Option(help: "postgres://user:password@host:port/database: keep jobs and images in PostgreSQL, shared by every node given the same URL (default: SQLite in --data-dir).")
    var database: String?
    @Option(help: "This node's name in job records, /api/v1/system and /metrics; unique among the nodes sharing a database (default: hostname:port).") var nodeName: String?
    @Option(help: "Seconds a running job's lease lasts; a job whose node died runs again elsewhere after this (1 to 3600).")
    var leaseSeconds: Double = 30
    @Option(help: ArgumentHelp(VRAMBudget.help + " Each job is planned at its own size; one that cannot fit fails with the reason.",
                               valueName: "bytes"))
    var vramBudget: VRAMBudget?

    /// An empty command; ArgumentParser fills in the options.
    public init() {}

    /// Checks the options before `run` (ArgumentParser calls it first).
    public func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1 to 65535") }
        guard (1...100_000).contains(maxQueue) else { throw ValidationError("--max-queue must be 1 to 100000") }
        guard idleTimeout.isFinite, (1...3600).contains(idleTimeout) else {
            throw ValidationError("--idle-timeout must be 1 to 3600 seconds")
        }
        if let maxConnections, !(1...1_000_000).contains(maxConnections) {
            throw ValidationError("--max-connections must be 1 to 1000000")
        }
        do { try serverOptions.validate() } catch { throw ValidationError(error.description) }
        if let devices { _ = try Self.deviceList(devices) }
    }

    /// `--devices`: `all`, or a comma-separated list of `cpu`, `cuda`, `cuda:N`, `auto`.
    static func deviceList(_ text: String) throws -> [DeviceChoice]? {
        if text == "all" { return nil }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, parts.count <= 64 else { throw ValidationError("--devices lists 1 to 64 devices") }
        return try parts.map { part in
            guard let choice = DeviceChoice(argument: part.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--devices: \(part.isEmpty ? "an empty entry" : "'\(part)'") is not cpu, cuda, cuda:N or auto")
            }
            return choice
        }
    }

    /// The devices to run workers on: `--devices`, else `--device` when it names one, else every GPU
    /// (the CPU when there is none).
    func workerDevices() throws -> [DeviceChoice] {
        if let devices, let list = try Self.deviceList(devices) { return list }
        if devices == nil, modelOptions.device != .auto { return [modelOptions.device] }
        let gpus = (try? CUDADriver.shared().devices()) ?? []
        return gpus.isEmpty ? [.cpu] : gpus.map { .cuda($0.ordinal) }
    }

    /// The server settings the flags ask for.
    var serverOptions: ServerOptions {
        var options = ServerOptions(dataDirectory: dataDir ?? ServerOptions.defaultDataDirectory())
        options.host = host
        options.port = port
        options.apiKey = apiKey
        options.maxQueue = maxQueue
        options.publicDirectory = publicDir
        options.publicURL = publicURL
        options.connections.idleTimeout = idleTimeout
        options.connections.headerTimeout = min(10, idleTimeout)
        options.connections.maxConnections = maxConnections
        options.database = database
        options.hubCacheDirectory = HubEnvironment.current().cacheDirectory
        options.nodeName = nodeName
        options.leaseSeconds = leaseSeconds
        return options
    }

    /// Runs the command.
    public func run() async throws {
        var logger = Logger(label: "zimage")
        logger.logLevel = .info
        var options = serverOptions
        try WritableFolder.ensure(options.dataDirectory, flag: "--data-dir")
        let devices = try workerDevices()
        // CPU workers share the cores: each gets its part unless --threads says otherwise.
        let cpuWorkers = devices.filter { $0 == .cpu }.count
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = modelOptions.threads ?? (cpuWorkers > 1 ? max(1, cores / cpuWorkers) : nil)
        // Read only, from whichever thread loads or rebuilds a worker's engine.
        nonisolated(unsafe) let modelOptions = self.modelOptions
        let loraDirectory = options.dataDirectory + "/loras"
        let budget = vramBudget
        let plans = NIOLockedValueBox<PlanSummary?>(nil)
        let hardware = NIOLockedValueBox<HardwareDescription?>(nil)
        let makeEngine: @Sendable (DeviceChoice) throws -> PipelineEngine = { device in
            let backend = try device.backend(threads: threads)
            var precision = modelOptions.precision.resolved(on: backend)
            // The first device, for /api/v1/hardware: free memory read before any weight loads.
            if let gpu = backend as? CUDABackend, hardware.withLockedValue({ $0 == nil }) {
                let (card, note) = DetectedCard.card(gpu.info)
                var budgetBytes: Int?
                if case .bytes(let bytes)? = budget { budgetBytes = bytes }
                let description = HardwareDescription(card: card, note: note, budgetBytes: budgetBytes,
                                                      freeBytesAtStart: try? gpu.deviceMemory().free)
                hardware.withLockedValue { if $0 == nil { $0 = description } }
            }
            // Planned at the default size (1024², batch 1) before loading; each job again at its own.
            var request = PlanRequest(weights: GenerateCommand.weights(modelOptions.precision, precision))
            let decision = precision == .float32 || modelOptions.usesDemoModel ? nil
                : try RunPlanning.decide(backend: backend, budget: budget, request: request)
            var placement = ComponentPlacement.resident
            var loadedMode = MemoryMode.resident
            if let decision {
                Logger(label: "zimage").info("plan \(device): \(decision.reason)")
                let plan = try RunPlanning.require(decision)
                precision = RunPlanning.precision(plan, from: precision)
                request.weights = plan.weights
                placement = RunPlanning.placement(plan)
                loadedMode = plan.mode
                if let budget = decision.budgetBytes { backend.limitDeviceMemory(toBytes: budget) }
                plans.withLockedValue { if $0 == nil { $0 = PlanSummary(decision) } }
            }
            let (pipeline, _, _, isDemo) = try modelOptions.pipeline(backend: backend, precision: precision,
                                                                     placement: placement) {
                Logger(label: "zimage").info("\($0)")
            }
            let engine = PipelineEngine(pipeline: pipeline, modelName: isDemo ? "z-image-demo" : pipeline.modelName,
                                        deviceDescription: "\(backend.device) (\(precision.rawValue))", isDemoModel: isDemo,
                                        loraLibrary: LoRALibrary(directory: loraDirectory))
            if let decision {
                let card = decision.card, limit = decision.budgetBytes, planned = request, mode = loadedMode
                engine.jobPlanner = { parameters, loraBytes in
                    var job = planned
                    (job.width, job.height, job.batch, job.steps) = (parameters.width, parameters.height,
                                                                     parameters.batchSize, parameters.steps)
                    job.guidance = parameters.guidanceScale > 0
                    job.loraBytes = loraBytes
                    let choice = Planner().decide(job, on: card, budget: limit)
                    guard let chosen = choice.chosen else {
                        throw GenerationError.invalidParameter("size", "over this server's --vram-budget: \(choice.reason)")
                    }
                    // The weights were placed at start: a job runs in a mode that placement allows.
                    guard let plan = RunPlanning.followable(chosen, among: choice, loadedIn: mode,
                                                            limit: limit ?? card.memoryBytes) else {
                        throw GenerationError.invalidParameter("size", "over this server's --vram-budget: it needs "
                            + "\(chosen.label), and this server placed its weights for \(mode.rawValue)")
                    }
                    return (plan.tiledDecode, plan.mode == .sequential)
                }
            }
            return engine
        }
        var workers: [WorkerSpec] = []
        for device in devices {
            let engine = try makeEngine(device)
            workers.append(WorkerSpec(device: device.description, engine: engine, rebuild: { try makeEngine(device) }))
        }
        options.plan = plans.withLockedValue { $0 }
        options.hardware = hardware.withLockedValue { $0 }
        if let nvml = NVML.shared { options.gpuStatistics = { nvml.statistics() } }
        let engine = workers[0].engine
        if host != "127.0.0.1" && host != "localhost" && host != "::1" && apiKey == nil {
            logger.warning("serving on \(host) without --api-key: anyone who can reach this port can use it")
        }
        logger.info("""
            zimage serve: http://\(host):\(port)/ model \(engine.modelName), \(workers.count) worker(s) on \
            \(workers.map(\.device).joined(separator: ", ")), \
            jobs in \(options.storeDescription), node \(options.node), \
            at most \(options.connections.acceptedConnections) connections
            """)
        let app: any ApplicationProtocol
        do {
            app = try buildApplication(options, workers: workers, logger: logger)
        } catch let error as ServerOptionsError {
            throw CLIError(error.description)
        } catch {
            throw CLIError("--data-dir \(options.dataDirectory): cannot open the job database: \(Self.plain(error))")
        }
        try await app.runService()
    }

    /// An error as one sentence (Foundation's and SQLite's descriptions without their dumps).
    static func plain(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
        return "\(error)"
    }
}
