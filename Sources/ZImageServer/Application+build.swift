import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import ZImagePipeline

/// Settings of `zimage serve`.
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 7860
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
    }
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
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Where the bundled web UI and OpenAPI document are.
public enum ServerResources {
    public static var publicDirectory: String? { Bundle.module.url(forResource: "public", withExtension: nil)?.path }
    static var openAPI: Data? {
        Bundle.module.url(forResource: "openapi", withExtension: "json").flatMap { try? Data(contentsOf: $0) }
    }
}

/// The server: routes, middleware and the generation service. `zimage serve` and the tests build
/// the same application with this function.
public func buildApplication(_ options: ServerOptions, engine: any GenerationEngine,
                             logger: Logger = Logger(label: "zimage.server")) throws -> some ApplicationProtocol {
    try options.validate()
    let store = try JobStore(dataDirectory: options.dataDirectory)
    let metrics = ServerMetrics()
    let service = try GenerationService(store: store, engine: engine, events: JobEvents(), metrics: metrics,
                                        maxQueue: options.maxQueue, logger: logger)
    // HEAD works on every GET route (headers only).
    let router = Router(context: ZImageRequestContext.self, options: .autoGenerateHeadEndpoints)
    router.add(middleware: JSONErrorMiddleware())
    router.add(middleware: RequestCountMiddleware(metrics: metrics))
    if let key = options.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }
    if let path = options.publicDirectory ?? ServerResources.publicDirectory, let folder = ContainedFolder(path) {
        router.add(middleware: StaticFilesMiddleware(folder: folder))
    }
    NativeAPI(service: service, store: store, engine: engine, limits: options.limits).register(on: router)
    A1111API(service: service, store: store, engine: engine, limits: options.limits,
             options: OptionsStore(A1111API.defaultOptions(model: engine.modelName))).register(on: router)
    OpenAIAPI(service: service, store: store, engine: engine, limits: options.limits, publicURL: options.baseURL)
        .register(on: router)
    router.get("api/v1/openapi.json") { _, _ in
        guard let data = ServerResources.openAPI else { throw APIError.notFound("openapi.json") }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(bytes: data)))
    }
    router.get("metrics") { _, _ in
        metrics.queueLength.record(Int64(await service.queueLength))
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                        body: .init(byteBuffer: .init(string: metrics.render())))
    }
    router.get("health") { _, _ in Response.json(["status": "ok"]) }
    let connections = options.connections, gauge = ConnectionGauge()
    let server = HTTPServerBuilder { responder in
        GuardedHTTP1Channel(responder: responder, limits: connections, gauge: gauge)
    }
    return Application(router: router, server: server,
                       configuration: .init(address: .hostname(options.host, port: options.port), serverName: "zimage",
                                            availableConnectionsDelegate: MaximumAvailableConnections(
                                                connections.acceptedConnections, logger: logger)),
                       services: [service], logger: logger)
}
