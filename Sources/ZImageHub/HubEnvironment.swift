import Foundation

/// Where the Hub is and where its cache lives, read from the environment as huggingface_hub
/// reads it (`constants.py`): `HF_ENDPOINT` (default https://huggingface.co), `HF_TOKEN` then
/// `HUGGING_FACE_HUB_TOKEN` then the file `$HF_TOKEN_PATH` (default `$HF_HOME/token`), `HF_HOME`
/// (default `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`), `HF_HUB_CACHE` (then the
/// legacy `HUGGINGFACE_HUB_CACHE`, default `$HF_HOME/hub`) and `HF_HUB_OFFLINE`.
public struct HubEnvironment: Sendable, Equatable {
    /// Base URL without a trailing slash.
    public var endpoint: String
    /// The access token, if any.
    public var token: String?
    /// The hub cache folder (holding `models--org--name`).
    public var cacheDirectory: String
    /// Whether network access is turned off.
    public var offline: Bool

    /// An explicit environment (tests, or a caller that resolved the variables itself).
    public init(endpoint: String = "https://huggingface.co", token: String? = nil, cacheDirectory: String,
                offline: Bool = false) {
        self.endpoint = endpoint
        self.token = token
        self.cacheDirectory = cacheDirectory
        self.offline = offline
    }

    /// Reads `variables` (the process environment by default).
    public static func current(_ variables: [String: String] = ProcessInfo.processInfo.environment) -> HubEnvironment {
        func value(_ name: String) -> String? {
            guard let text = variables[name], !text.isEmpty else { return nil }
            return text
        }
        let home = value("HOME") ?? NSHomeDirectory()
        func expand(_ path: String) -> String {
            path == "~" ? home : path.hasPrefix("~/") ? home + path.dropFirst(1) : path
        }
        let cacheHome = value("XDG_CACHE_HOME").map(expand) ?? home + "/.cache"
        let hfHome = value("HF_HOME").map(expand) ?? cacheHome + "/huggingface"
        let cache = (value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE")).map(expand) ?? hfHome + "/hub"
        var endpoint = value("HF_ENDPOINT") ?? "https://huggingface.co"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        var token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        if token == nil {
            let path = value("HF_TOKEN_PATH").map(expand) ?? hfHome + "/token"
            token = (try? String(contentsOfFile: path, encoding: .utf8))
        }
        token = token?.trimmingCharacters(in: .whitespacesAndNewlines)
        if token?.isEmpty == true { token = nil }
        return HubEnvironment(endpoint: endpoint, token: token, cacheDirectory: cache,
                              offline: isTrue(value("HF_HUB_OFFLINE") ?? value("TRANSFORMERS_OFFLINE")))
    }

    /// huggingface_hub's `_is_true`: 1, ON, YES, TRUE in any case.
    static func isTrue(_ value: String?) -> Bool {
        guard let value else { return false }
        return ["1", "ON", "YES", "TRUE"].contains(value.uppercased())
    }
}
