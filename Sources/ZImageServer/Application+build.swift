import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import ZImagePipeline

/// Settings of `zimage serve`.
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 7860
    public var dataDirectory: String
    public var apiKey: String?
    /// Jobs that may wait in the queue (more get 429).
    public var maxQueue = 32
    public var limits = ServerLimits()
    /// Folder of the web UI; defaults to the copy bundled with the server.
    public var publicDirectory: String?

    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }

    /// `$XDG_DATA_HOME/zimage`, else `~/.local/share/zimage`.
    public static func defaultDataDirectory() -> String {
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/zimage" }
        return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/share/zimage"
    }
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
    let store = try JobStore(dataDirectory: options.dataDirectory)
    let metrics = ServerMetrics()
    let service = try GenerationService(store: store, engine: engine, events: JobEvents(), metrics: metrics,
                                        maxQueue: options.maxQueue, logger: logger)
    let router = Router(context: ZImageRequestContext.self)
    router.add(middleware: JSONErrorMiddleware())
    router.add(middleware: RequestCountMiddleware(metrics: metrics))
    if let key = options.apiKey, !key.isEmpty { router.add(middleware: APIKeyMiddleware(key: key)) }
    if let folder = options.publicDirectory ?? ServerResources.publicDirectory {
        router.add(middleware: FileMiddleware(folder, searchForIndexHtml: true, logger: logger))
    }
    NativeAPI(service: service, store: store, engine: engine, limits: options.limits).register(on: router)
    A1111API(service: service, store: store, engine: engine, limits: options.limits,
             options: OptionsStore(A1111API.defaultOptions(model: engine.modelName))).register(on: router)
    OpenAIAPI(service: service, store: store, engine: engine, limits: options.limits).register(on: router)
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
    return Application(router: router,
                       configuration: .init(address: .hostname(options.host, port: options.port), serverName: "zimage"),
                       services: [service], logger: logger)
}
