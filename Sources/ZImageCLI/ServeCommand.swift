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

    public init() {}

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
        return options
    }

    public func run() async throws {
        var logger = Logger(label: "zimage")
        logger.logLevel = .info
        let options = serverOptions
        try WritableFolder.ensure(options.dataDirectory, flag: "--data-dir")
        let (pipeline, backend, precision, isDemo) = try modelOptions.pipeline { logger.info("\($0)") }
        let engine = PipelineEngine(pipeline: pipeline, modelName: isDemo ? "z-image-demo" : pipeline.modelName,
                                    deviceDescription: "\(backend.device) (\(precision.rawValue))", isDemoModel: isDemo,
                                    loraLibrary: LoRALibrary(directory: options.dataDirectory + "/loras"))
        if host != "127.0.0.1" && host != "localhost" && host != "::1" && apiKey == nil {
            logger.warning("serving on \(host) without --api-key: anyone who can reach this port can use it")
        }
        logger.info("""
            zimage serve: http://\(host):\(port)/ model \(engine.modelName), data in \(options.dataDirectory), \
            at most \(options.connections.acceptedConnections) connections
            """)
        let app: any ApplicationProtocol
        do {
            app = try buildApplication(options, engine: engine, logger: logger)
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
