import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ZImageCPU
import ZImageHub
import ZImagePipeline
import ZImageServer

/// `zimage serve`: the web UI and the HTTP APIs.
public struct ServeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the web UI, the native JSON API and A1111/OpenAI-compatible APIs.",
        discussion: """
            Binds to 127.0.0.1 unless --host says otherwise. With --api-key every request needs the key \
            (Authorization: Bearer KEY, or HTTP Basic with the key as password). Jobs, images and history \
            live in --data-dir and survive restarts.
            """
    )

    @Option(help: "Model directory (diffusers layout) or a repository id in the Hugging Face cache. Default: the demo model.") var model: String?
    @OptionGroup var split: SplitFileOptions
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port.") var port = 7860
    @Option(help: "Folder for the job database and images (default: ~/.local/share/zimage).") var dataDir: String?
    @Option(help: "Require this API key on every request.") var apiKey: String?
    @Option(help: "cpu, cuda, cuda:N or auto.") var device = "auto"
    @Option(help: "fp32, bf16, fp16 or auto.") var precision = "auto"
    @Option(help: "Most jobs waiting in the queue; more are refused with 429.") var maxQueue = 32
    @Option(help: "CPU threads (default: all cores).") var threads: Int?
    @Option(help: "Serve the web UI from this folder instead of the bundled one.") var publicDir: String?

    public init() {}

    public func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1 to 65535") }
        guard maxQueue >= 1 else { throw ValidationError("--max-queue must be at least 1") }
        guard ["auto", "fp32", "bf16", "fp16"].contains(precision) else {
            throw ValidationError("--precision must be fp32, bf16, fp16 or auto")
        }
    }

    public func run() async throws {
        var logger = Logger(label: "zimage")
        logger.logLevel = .info
        let backend = try DeviceChoice.backend(device, threads: threads)
        let chosen: Precision = precision == "auto"
            ? (backend.device == .cpu ? .float32 : .bfloat16) : Precision(rawValue: precision) ?? .float32
        let named = try ModelSource.pipeline(model: model, split: split, backend: backend, precision: chosen)
        let pipeline = try named ?? ZImagePipeline(modelDirectory: DemoModel.ensure(), backend: backend, precision: chosen)
        let engine = PipelineEngine(pipeline: pipeline, modelName: named == nil ? "z-image-demo" : pipeline.modelName,
                                    deviceDescription: "\(backend.device) (\(chosen.rawValue))", isDemoModel: named == nil)
        var options = ServerOptions(dataDirectory: dataDir ?? ServerOptions.defaultDataDirectory())
        options.host = host
        options.port = port
        options.apiKey = apiKey
        options.maxQueue = maxQueue
        options.publicDirectory = publicDir
        if host != "127.0.0.1" && host != "localhost" && host != "::1" && apiKey == nil {
            logger.warning("serving on \(host) without --api-key: anyone who can reach this port can use it")
        }
        logger.info("zimage serve: http://\(host):\(port)/ model \(engine.modelName), data in \(options.dataDirectory)")
        let app = try buildApplication(options, engine: engine, logger: logger)
        try await app.runService()
    }
}
