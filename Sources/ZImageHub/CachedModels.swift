import Foundation

/// A model pipeline in the Hugging Face cache (for listings such as the server's model list).
public struct CachedModel: Sendable, Equatable {
    public var repo: String
    public var revision: String
    public var commit: String
    /// `snapshots/<commit>`, holding `model_index.json`.
    public var snapshot: String
}

extension HubCache {
    /// Every `models--org--name` in `root` whose refs point at a complete snapshot with a
    /// `model_index.json` (a diffusers pipeline), sorted by repository and revision.
    public static func cachedModels(in root: String) -> [CachedModel] {
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix("models--") }
        var found: [CachedModel] = []
        for folder in folders.sorted() {
            let name = folder.dropFirst("models--".count).replacingOccurrences(of: "--", with: "/")
            guard let repo = try? RepositoryID(name) else { continue }
            let cache = HubCache(root: root, repo: repo)
            let refs = (FileManager.default.enumerator(atPath: cache.storage + "/refs")?.allObjects as? [String]) ?? []
            for revision in refs.sorted() {
                guard let snapshot = try? cache.completeSnapshot(revision: revision), let commit = cache.commit(for: revision),
                      FileManager.default.fileExists(atPath: snapshot + "/model_index.json") else { continue }
                found.append(CachedModel(repo: repo.value, revision: revision, commit: commit, snapshot: snapshot))
            }
        }
        return found
    }
}
