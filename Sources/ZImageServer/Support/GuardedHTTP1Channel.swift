import Foundation
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Connection limits and timeouts of `zimage serve` (docs/server.md, "Limits").
public struct ConnectionLimits: Sendable {
    /// A connection with no request in flight is closed after this long (keep-alive idle time).
    public var idleTimeout: Double = 30
    /// A new connection must send its first request head within this long.
    public var headerTimeout: Double = 10
    /// Open connections at most (more wait in the kernel's backlog); nil: from the descriptor limit.
    public var maxConnections: Int?
    /// A request body must arrive within this long (408 otherwise).
    public static let bodyTimeout: Double = 30

    /// The defaults.
    public init() {}

    /// The soft descriptor limit of this process (`ulimit -n`).
    public static var descriptorLimit: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return limit.rlim_cur == rlim_t.max ? 1 << 20 : Int(clamping: limit.rlim_cur)
    }

    /// Connections accepted at most: the descriptor limit less a reserve for the database, image
    /// files and the runtime (an eighth, at least 64), or `maxConnections` when set.
    public var acceptedConnections: Int {
        if let maxConnections { return max(1, maxConnections) }
        let limit = Self.descriptorLimit
        return max(4, limit - max(64, limit / 8))
    }

    /// Above this many open connections, requests are answered 503 at once and the connection closed,
    /// so the last few accepted connections serve refusals instead of waiting.
    public var servedConnections: Int { max(1, acceptedConnections - max(2, acceptedConnections / 16)) }
}

/// Open connections, counted by every connection's `HTTPFramingGuard`.
final class ConnectionGauge: Sendable {
    private let count = NIOLockedValueBox(0)
    func opened() -> Int { count.withLockedValue { $0 += 1; return $0 } }
    func closed() { count.withLockedValue { $0 -= 1 } }
    var current: Int { count.withLockedValue { $0 } }
}

/// Hummingbird's HTTP/1 child channel with `HTTPFramingGuard` placed right after NIO's parser.
struct GuardedHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
    let responder: HTTPChannelHandler.Responder
    let limits: ConnectionLimits
    let gauge: ConnectionGauge

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: .init())
            try channel.pipeline.syncOperations.addHandler(HTTPFramingGuard(limits: limits, gauge: gauge))
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandler(
                HTTPConnectionStateHandler(idleTimeout: .milliseconds(Int64(limits.idleTimeout * 1000)), logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                       configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

/// HTTP framing that the parser lets through but the application must not see, answered on the
/// connection itself: a header timeout, 503 above the connection cap, 501 for transfer codings
/// other than chunked, 405 for CONNECT, `100 Continue` for `Expect: 100-continue`, and 400 (not
/// a crash or a hang) for anything the parser refuses.
final class HTTPFramingGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let limits: ConnectionLimits
    let gauge: ConnectionGauge
    private var counted = false
    private var sawHead = false
    /// Set once this connection answered by itself; every later inbound part is dropped.
    private var refused = false
    private var headerTimer: Scheduled<Void>?

    init(limits: ConnectionLimits, gauge: ConnectionGauge) {
        self.limits = limits
        self.gauge = gauge
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !counted else { return }
        counted = true
        _ = gauge.opened()
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        headerTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(limits.headerTimeout * 1000))) {
            if !bound.value.handler.sawHead { bound.value.context.close(promise: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { stop() }

    private func stop() {
        headerTimer?.cancel()
        headerTimer = nil
        if counted { gauge.closed() }
        counted = false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refused { return }
        guard case .head(let head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        sawHead = true
        if let refusal = refusal(for: head) {
            refuse(context, refusal.status, refusal.message, version: head.version)
            return
        }
        if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }), head.version.minor >= 1 {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                                  promise: nil)
        }
        context.fireChannelRead(data)
    }

    func refusal(for head: HTTPRequestHead) -> (status: HTTPResponseStatus, message: String)? {
        if head.method == .CONNECT { return (.methodNotAllowed, "CONNECT is not supported: this is not a proxy") }
        let codings = head.headers["transfer-encoding"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if codings.contains(where: { $0 != "chunked" }) {
            return (.notImplemented, "only the chunked transfer coding is supported")
        }
        if gauge.current > limits.servedConnections {
            return (.serviceUnavailable, "the server has too many open connections; try again shortly")
        }
        let expectations = head.headers["expect"].map { $0.lowercased() }
        if expectations.contains(where: { $0 != "100-continue" }) {
            return (.expectationFailed, "only Expect: 100-continue is supported")
        }
        return nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if !refused { refuse(context, .badRequest, "the request is not valid HTTP/1.1", version: .http1_1) }
    }

    private func refuse(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ message: String,
                        version: HTTPVersion) {
        refused = true
        let body = #"{"error":{"code":"http_error","field":null,"message":"\#(message)"}}"#
        var headers = HTTPHeaders([("Content-Type", "application/json; charset=utf-8"), ("Connection", "close"),
                                   ("Content-Length", String(body.utf8.count))])
        if status == .serviceUnavailable { headers.add(name: "Retry-After", value: "5") }
        let responseVersion = version.major == 1 ? version : .http1_1
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: responseVersion, status: status, headers: headers))),
                      promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
