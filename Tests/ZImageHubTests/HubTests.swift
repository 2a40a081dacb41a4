import Foundation
import Testing
@testable import ZImageHub

func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "zimage-hub-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The environment, names and cache layout as huggingface_hub defines them.
@Suite struct HubLayoutTests {
    @Test func environmentFollowsHuggingFaceHub() throws {
        let defaults = HubEnvironment.current(["HOME": "/home/u"])
        #expect(defaults == HubEnvironment(endpoint: "https://huggingface.co", token: nil,
                                           cacheDirectory: "/home/u/.cache/huggingface/hub", offline: false))
        #expect(HubEnvironment.current(["HOME": "/h", "XDG_CACHE_HOME": "/x"]).cacheDirectory == "/x/huggingface/hub")
        #expect(HubEnvironment.current(["HOME": "/h", "HF_HOME": "~/hf"]).cacheDirectory == "/h/hf/hub")
        #expect(HubEnvironment.current(["HOME": "/h", "HF_HOME": "/a", "HF_HUB_CACHE": "/b"]).cacheDirectory == "/b")
        #expect(HubEnvironment.current(["HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/c"]).cacheDirectory == "/c")
        #expect(HubEnvironment.current(["HOME": "/h", "HF_ENDPOINT": "http://127.0.0.1:5/"]).endpoint == "http://127.0.0.1:5")
        #expect(HubEnvironment.current(["HOME": "/h", "HF_TOKEN": "a", "HUGGING_FACE_HUB_TOKEN": "b"]).token == "a")
        #expect(HubEnvironment.current(["HOME": "/h", "HUGGING_FACE_HUB_TOKEN": "b"]).token == "b")
        for value in ["1", "ON", "yes", "True"] {
            #expect(HubEnvironment.current(["HOME": "/h", "HF_HUB_OFFLINE": value]).offline)
        }
        #expect(!HubEnvironment.current(["HOME": "/h", "HF_HUB_OFFLINE": "0"]).offline)
        // The token file under HF_HOME, whitespace trimmed.
        let home = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: home) }
        try "hf_file\n".write(toFile: home + "/token", atomically: true, encoding: .utf8)
        #expect(HubEnvironment.current(["HOME": "/h", "HF_HOME": home]).token == "hf_file")
    }

    @Test func repositoryIdsAreValidatedLikeTheHub() throws {
        #expect(try RepositoryID("Tongyi-MAI/Z-Image-Turbo").value == "Tongyi-MAI/Z-Image-Turbo")
        #expect(try RepositoryID("gpt2").value == "gpt2")
        for bad in ["", "a/b/c", "../x", "a/..", "a--b/c", "-a/b", "a/b.", "a b/c", "/abs", "a/"] {
            #expect(throws: HubError.invalidRepository(bad)) { try RepositoryID(bad) }
        }
        #expect(RepositoryID.looksLikeRepository("Tongyi-MAI/Z-Image-Turbo"))
        #expect(!RepositoryID.looksLikeRepository("Z-Image-Turbo"))
        #expect(!RepositoryID.looksLikeRepository("./models/x"))
        #expect(HubCache(root: "/c", repo: try RepositoryID("Tongyi-MAI/Z-Image-Turbo")).storage
            == "/c/models--Tongyi-MAI--Z-Image-Turbo")
    }

    @Test func etagsAreNormalisedAsHuggingFaceHubDoes() {
        #expect(HubClient.normalizeEtag("W/\"abc\"") == "abc")
        #expect(HubClient.normalizeEtag("\"abc\"") == "abc")
        #expect(CommitHash.isValidEtag(String(repeating: "a", count: 64)))
        #expect(!CommitHash.isValidEtag("../../etc/passwd"))
        #expect(HubClient.quote("refs/pr/1", keepSlash: false) == "refs%2Fpr%2F1")
        #expect(HubClient.quote("a b/c.json", keepSlash: true) == "a%20b/c.json")
    }

    @Test func snapshotLinksAreRelativeAndOnlyCompleteSnapshotsResolve() throws {
        let root = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = HubCache(root: root, repo: try RepositoryID("org/name"))
        let commit = String(repeating: "c", count: 40), etag = String(repeating: "e", count: 64)
        try FileOps.createDirectory(cache.storage + "/blobs")
        try Data("weights".utf8).write(to: URL(fileURLWithPath: cache.blob(etag)))
        try cache.link(file: "transformer/a.safetensors", commit: commit, etag: etag)
        try cache.link(file: "b.json", commit: commit, etag: etag)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: cache.snapshot(commit) + "/transformer/a.safetensors")
            == "../../../blobs/" + etag)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: cache.snapshot(commit) + "/b.json")
            == "../../blobs/" + etag)
        try cache.writeRef("main", commit: commit)
        #expect(try String(contentsOfFile: cache.ref("main"), encoding: .utf8) == commit)
        #expect(cache.commit(for: "main") == commit)
        #expect(try cache.completeSnapshot(revision: "main") == cache.snapshot(commit))
        // With a listing naming a file that is not there, the snapshot is incomplete.
        let listing = TreeListing(files: [
            "b.json": .init(size: 7, blobID: etag, lfsSHA256: nil, lfsSize: nil),
            "c.json": .init(size: 1, blobID: etag, lfsSHA256: nil, lfsSize: nil),
        ])
        try listing.write(path: cache.tree(commit))
        #expect(TreeListing.read(path: cache.tree(commit)) == listing)
        #expect(throws: HubError.incompleteSnapshot(repo: "org/name", revision: "main", missing: ["c.json"])) {
            try cache.completeSnapshot(revision: "main")
        }
        #expect(throws: ModelLocator.LocatorError.notFound(argument: "org/other", cache: root)) {
            try ModelLocator.resolve("org/other", environment: HubEnvironment(cacheDirectory: root))
        }
        #expect(HubCache.cachedModels(in: root).isEmpty)   // incomplete, and no model_index.json
        try cache.link(file: "c.json", commit: commit, etag: etag)
        try cache.link(file: "model_index.json", commit: commit, etag: etag)
        #expect(HubCache.cachedModels(in: root) == [CachedModel(repo: "org/name", revision: "main", commit: commit,
                                                                snapshot: cache.snapshot(commit))])
        #expect(try ModelLocator.resolve("org/name", environment: HubEnvironment(cacheDirectory: root))
            == cache.snapshot(commit))
        #expect(try ModelLocator.resolve(root, environment: HubEnvironment(cacheDirectory: root)) == root)
    }

    @Test func contentHashesAreTheHubsEtags() throws {
        let data = Data("hello\n".utf8)
        var sha1 = ContentHasher(etag: String(repeating: "0", count: 40), size: Int64(data.count))
        data.withUnsafeBytes { sha1.update($0) }
        #expect(sha1.finish().value == "ce013625030ba8dba906f756967f9e9ca394464a")   // `git hash-object`
        var sha256 = ContentHasher(etag: String(repeating: "0", count: 64), size: Int64(data.count))
        data.withUnsafeBytes { sha256.update($0) }
        #expect(sha256.finish().value == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
    }

    @Test func patternsFilterAsHuggingFaceHubDoes() {
        let all = FileFilter(include: [], exclude: [])
        #expect(all.accepts("transformer/a.safetensors"))
        let tokenizer = FileFilter(include: ["tokenizer/*", "*.json"], exclude: ["*.md"])
        #expect(tokenizer.accepts("tokenizer/tokenizer.json") && tokenizer.accepts("model_index.json"))
        #expect(tokenizer.accepts("vae/config.json"))   // fnmatch's * crosses folders, as Python's does
        #expect(!tokenizer.accepts("vae/diffusion_pytorch_model.safetensors") && !tokenizer.accepts("README.md"))
        #expect(FileFilter(include: ["text_encoder/"], exclude: []).accepts("text_encoder/model.safetensors"))
    }

    @Test func aFullDiskIsATypedError() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { return }
        let file = try AppendFile(path: "/dev/full")
        #expect(throws: HubError.diskFull(path: "/dev/full")) {
            try Data(count: 4096).withUnsafeBytes { try file.write($0) }
        }
    }
}
