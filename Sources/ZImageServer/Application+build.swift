import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import ServiceLifecycle
import ZImagePipeline
import ZImagePlanner
import ZImageTensor

/// Settings of `zimage serve`.
public struct ServerOptions: Sendable {
    /// The address to bind (`--host`).
    public var host = "127.0.0.1"
    /// The TCP port to listen on (`--port`).
    public var port = 7860
    /// The folder of the job database, images and `loras/` (`--data-dir`).
    public var dataDirectory: String
    /// Every request must carry this key; nil serves without one. An empty key is refused.
    public var apiKey: String?
    /// Jobs that may wait in the queue (more get 429).
    public var maxQueue = 32
    /// What a client may ask for (sizes, steps, batch, prompt length).
    public var limits = GenerationLimits.server
    /// Timeouts and the connection cap.
    public var connections = ConnectionLimits()
    /// Folder of the web UI; defaults to the copy bundled with the server.
    public var publicDirectory: String?
    /// The address clients reach this server at (`http://host:port` or `https://…`, no path), used for
    /// image URLs (OpenAI `response_format: url`); nil uses the bound address. Never the client's `Host`.
    public var publicURL: String?
    /// A `postgres://…` URL: jobs, images and the queue in PostgreSQL, shared with every node given
    /// the same URL. Nil keeps them in SQLite in `dataDirectory` (one node).
    public var database: String?
    /// This node's name in job records, `/api/v1/system` and metrics (default: `host:port`).
    public var nodeName: String?
    /// Seconds a running job's lease lasts without a renewal; a job whose node died is taken up by
    /// another node this long after (1 to 3600).
    public var leaseSeconds: Double = 30
    /// Live GPU readings for `/api/v1/system`, `/metrics` and the web UI's gauge (NVML in
    /// `zimage serve`); nil, or an empty answer, where there is no monitor: the fields are then null.
    public var gpuStatistics: (@Sendable () -> [GPUStatistics])?
    /// What the planner chose for this node's workers (`--vram-budget`), shown in `/api/v1/system`.
    public var plan: PlanSummary?
    /// The card this node runs on, for `/api/v1/hardware` and the web UI's Hardware panel; nil: this
    /// machine's CPU (the CPU backend).
    public var hardware: HardwareDescription?
    /// A Hugging Face hub cache (`HF_HUB_CACHE`) whose diffusers pipelines `/sdapi/v1/sd-models`
    /// lists after the served model; nil lists the served model only. Read on each request.
    public var hubCacheDirectory: String?

    /// The defaults, keeping jobs and images in `dataDirectory`.
    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }

    /// The base of the URLs this server hands out: `publicURL`, else `http://host:port`.
    public var baseURL: String {
        if let publicURL { return publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL }
        let address = host.contains(":") ? "[\(host)]" : host
        return "http://\(address == "0.0.0.0" || address == "[::]" ? "127.0.0.1" : address):\(port)"
    }

    /// Refuses settings that would quietly do something else than asked.
    public func validate() throws(ServerOptionsError) {
        if let apiKey, apiKey.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ServerOptionsError("the API key is empty: give a key, or leave --api-key out to serve without one")
        }
        if let apiKey, apiKey.utf8.contains(where: { $0 < 0x21 || $0 > 0x7e }) {
            throw ServerOptionsError("the API key must be printable ASCII without spaces (it travels in an HTTP header)")
        }
        if let publicURL {
            guard let url = URL(string: publicURL), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
                  url.host?.isEmpty == false, url.query == nil, url.fragment == nil, url.path.isEmpty || url.path == "/"
            else {
                throw ServerOptionsError("the public URL must look like http://host:port or https://host (got \(publicURL))")
            }
        }
        if let database { _ = try PostgresLocation(database) }
        guard leaseSeconds.isFinite, (1...3600).contains(leaseSeconds) else {
            throw ServerOptionsError("the lease must be 1 to 3600 seconds")
        }
        if let nodeName, nodeName.isEmpty || nodeName.utf8.count > 100 || nodeName.contains("/") {
            throw ServerOptionsError("the node name must be 1 to 100 characters without '/'")
        }
    }

    /// Where jobs live, for the start-up log (a database URL without its password).
    public var storeDescription: String {
        database.map { (try? PostgresLocation($0).description) ?? "PostgreSQL" } ?? "SQLite in \(dataDirectory)"
    }

    /// The node name: `nodeName`, else `hostname:port`.
    public var node: String { nodeName ?? "\(ProcessInfo.processInfo.hostName):\(port)" }
}

extension ServerOptions {
    /// `$XDG_DATA_HOME/zimage`, else `~/.local/share/zimage`.
    public static func defaultDataDirectory() -> String {
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/zimage" }
        return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/share/zimage"
    }
}

/// A setting of `zimage serve` that cannot be used, with what to do instead.
public struct ServerOptionsError: Error, CustomStringConvertible {
    /// What is wrong and what to do instead.
    public var description: String
    /// The error saying `description`.
    public init(_ description: String) { self.description = description }
}

/// Where the bundled web UI and OpenAPI document are: SwiftPM's resource bundle beside the
/// executable (`zimage_ZImageServer.resources`), found by `InstalledResources` — not
/// `Bundle.module`, which stopped `zimage serve` when the binary was copied without it.
public enum ServerResources {
    /// The bundled web UI folder; nil when the bundle is not installed beside the executable
    /// (the server then runs its APIs without the web UI and says so in the log).
    public static var publicDirectory: String? { InstalledResources.path(target: "ZImageServer", resource: "public") }
    static var openAPI: Data? {
        InstalledResources.path(target: "ZImageServer", resource: "openapi.json").flatMap { FileManager.default.contents(atPath: $0) }
    }
}

/// The server with one worker on `engine`.
public func buildApplication(_ options: ServerOptions, engine: any GenerationEngine,
                             logger: Logger = Logger(label: "zimage.server")) throws -> some ApplicationProtocol {
    try buildApplication(options, workers: [WorkerSpec(device: engine.deviceDescription, engine: engine)], logger: logger)
}

/// The server: routes, middleware, the job store (SQLite, or PostgreSQL with `options.database`)
/// and one worker per device. `zimage serve` and the tests build the same application with this
/// function. The first worker's engine answers for the model (name, tokenizer) in the APIs.
public func buildApplication(_ options: ServerOptions, workers: [WorkerSpec],
                             logger: Logger = Logger(label: "zimage.server")) throws -> some ApplicationProtocol {
    try options.validate()
    guard let engine = workers.first?.engine else { throw ServerOptionsError("no device to run generations on") }
    let store: any JobStore
    var services: [any Service] = []
    if let database = options.database {
        var configuration = try PostgresLocation(database).clientConfiguration
        configuration.options.maximumConnections = max(8, workers.count * 2 + 4)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        services.append(client)
        store = PostgresJobStore(client: client, logger: logger)
    } else {
        store = try SQLiteJobStore(dataDirectory: options.dataDirectory)
    }
    let metrics = ServerMetrics()
    var lease = LeasePolicy()
    lease.leaseSeconds = options.leaseSeconds
    let service = GenerationService(store: store, workers: workers, node: options.node, events: JobEvents(),
                                    metrics: metrics, maxQueue: options.maxQueue, lease: lease, logger: logger)
    services.append(service)
    // HEAD works on every GET route (headers only).
    let router = Router(context: ZImageRequestContext.self, options: .autoGenerateHeadEndpoints)
    router.add(middleware: JSONErrorMiddleware())
    router.add(middleware: RequestCountMiddleware(metrics: metrics))
    if let key = options.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }
    if let path = options.publicDirectory ?? ServerResources.publicDirectory, let folder = ContainedFolder(path) {
        router.add(middleware: StaticFilesMiddleware(folder: folder))
    } else {
        let missing = "no web UI: zimage_ZImageServer.resources is not beside the zimage binary (copy it along); "
            + "the APIs are served"
        logger.warning("\(missing)")
    }
    NativeAPI(service: service, store: store, engine: engine, limits: options.limits,
              gpuStatistics: options.gpuStatistics, plan: options.plan).register(on: router)
    HardwareAPI(hardware: options.hardware ?? .hostCPU(), gpuStatistics: options.gpuStatistics).register(on: router)
    A1111API(service: service, store: store, engine: engine, limits: options.limits,
             options: OptionsStore(A1111API.defaultOptions(model: engine.modelName)),
             hubCache: options.hubCacheDirectory).register(on: router)
    OpenAIAPI(service: service, store: store, engine: engine, limits: options.limits, publicURL: options.baseURL)
        .register(on: router)
    router.get("api/v1/openapi.json") { _, _ in
        guard let data = ServerResources.openAPI else { throw APIError.notFound("openapi.json") }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(bytes: data)))
    }
    router.get("metrics") { _, _ in
        metrics.queueLength.record(Int64(try await store.count(status: .queued)))
        metrics.running.record(Int64(try await store.count(status: .running)))
        metrics.record(service.workerStatuses)
        metrics.record(options.gpuStatistics?() ?? [])
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                        body: .init(byteBuffer: .init(string: metrics.render())))
    }
    // 503 until the store is ready (migrated, recovered) and while no worker has an engine, so a
    // load balancer sends work elsewhere.
    router.get("health") { _, _ in
        guard service.isReady else { return Response.json(["status": "starting"], status: .serviceUnavailable) }
        guard service.workerStatuses.contains(where: { $0.state == .idle || $0.state == .running }) else {
            return Response.json(["status": "no working device"], status: .serviceUnavailable)
        }
        return Response.json(["status": "ok"])
    }
    let connections = options.connections, gauge = ConnectionGauge()
    let server = HTTPServerBuilder { responder in
        GuardedHTTP1Channel(responder: responder, limits: connections, gauge: gauge)
    }
    return Application(router: router, server: server,
                       configuration: .init(address: .hostname(options.host, port: options.port), serverName: "zimage",
                                            availableConnectionsDelegate: MaximumAvailableConnections(
                                                connections.acceptedConnections, logger: logger)),
                       services: services, logger: logger)
}
