import Foundation

/// SwiftPM resource bundles (`zimage_<Target>.resources`) found beside the running executable,
/// without `Bundle.module`, whose accessor stops the process when the bundle is missing (a
/// `zimage` binary copied somewhere without its folders must still run, saying what is missing).
public enum InstalledResources {
    /// The path of `resource` in the bundle of `target` beside the executable (as started, or
    /// with symlinks resolved), nil when it is not there.
    public static func path(target: String, resource: String) -> String? {
        let bundle = "zimage_\(target).resources"
        var folders = [Bundle.main.bundlePath, Bundle.main.executableURL?.deletingLastPathComponent().path]
            .compactMap { $0 }
        if let argument = CommandLine.arguments.first {
            folders.append(URL(fileURLWithPath: argument).resolvingSymlinksInPath().deletingLastPathComponent().path)
        }
        return folders.map { (($0 as NSString).appendingPathComponent(bundle) as NSString).appendingPathComponent(resource) }
            .first { FileManager.default.fileExists(atPath: $0) }
    }
}
