import Foundation

/// Turns a `--model` argument into a folder: an existing folder as it is, else a repository id
/// (`Tongyi-MAI/Z-Image-Turbo`) found in the Hugging Face cache (`zimage pull` or
/// `huggingface-cli download` put it there), at `refs/main` or at `org/name@revision`.
public enum ModelLocator {
    /// Errors name the cache searched and the command that fills it.
    public enum LocatorError: Error, CustomStringConvertible, Equatable {
        case notFound(argument: String, cache: String)

        public var description: String {
            switch self {
            case .notFound(let argument, let cache):
                "\(argument) is neither a folder nor a model in the Hugging Face cache (\(cache)); "
                    + "download it with `zimage pull \(argument.split(separator: "@").first ?? "")`"
            }
        }
    }

    /// The folder for `argument` (a folder, `org/name` or `org/name@revision`); an incomplete cached
    /// snapshot is `HubError.incompleteSnapshot`, an absent one `LocatorError.notFound`.
    public static func resolve(_ argument: String, environment: HubEnvironment = .current()) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory), isDirectory.boolValue {
            return argument
        }
        let parts = argument.split(separator: "@", maxSplits: 1).map(String.init)
        guard let name = parts.first, RepositoryID.looksLikeRepository(name), let repo = try? RepositoryID(name) else {
            return argument
        }
        let revision = parts.count == 2 ? parts[1] : "main"
        let cache = HubCache(root: environment.cacheDirectory, repo: repo)
        guard let snapshot = try cache.completeSnapshot(revision: revision) else {
            throw LocatorError.notFound(argument: argument, cache: environment.cacheDirectory)
        }
        return snapshot
    }
}
