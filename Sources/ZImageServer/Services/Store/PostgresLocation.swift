import Foundation
import PostgresNIO

/// A `postgres://user:password@host:port/database?sslmode=…` URL (libpq's form) read into
/// postgres-nio's settings. `sslmode` is `disable`, `prefer` (the default, as libpq) or `require`;
/// `?host=/run/postgresql` reaches the server through its Unix socket.
struct PostgresLocation: Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var unixSocketPath: String?
    var username: String
    var password: String?
    var database: String?
    var sslMode: String

    init(_ text: String) throws(ServerOptionsError) {
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme ?? "") else {
            throw ServerOptionsError("--database must be a postgres://user:password@host:port/database URL")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw ServerOptionsError("--database: the port must be 1 to 65535") }
        username = components.user.flatMap { $0.removingPercentEncoding } ?? ProcessInfo.processInfo.environment["USER"] ?? "postgres"
        password = components.password.flatMap { $0.removingPercentEncoding }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? nil : path.removingPercentEncoding
        sslMode = query["sslmode"] ?? "prefer"
        guard ["disable", "prefer", "require"].contains(sslMode) else {
            throw ServerOptionsError("--database: sslmode must be disable, prefer or require (got \(sslMode))")
        }
        if let socketFolder = query["host"], socketFolder.hasPrefix("/") {
            unixSocketPath = socketFolder + "/.s.PGSQL.\(port)"
        }
    }

    /// The URL without its password (for logs).
    var description: String {
        "postgres://\(username)@\(unixSocketPath ?? "\(host):\(port)")/\(database ?? "")"
    }

    private var tls: PostgresClient.Configuration.TLS {
        switch sslMode {
        case "disable": .disable
        case "require": .require(.makeClientConfiguration())
        default: .prefer(.makeClientConfiguration())
        }
    }

    var clientConfiguration: PostgresClient.Configuration {
        if let unixSocketPath {
            return .init(unixSocketPath: unixSocketPath, username: username, password: password, database: database)
        }
        return .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }
}
