import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import ZImageHub

/// `zimage pull [REPO] [--revision R]`: downloads a model into the Hugging Face cache.
public struct PullCommand: AsyncParsableCommand {
    /// The subcommand's name, abstract and help text.
    public static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Download a model from the Hugging Face Hub into its cache (shared with huggingface_hub).",
        discussion: """
            Files go to $HF_HUB_CACHE (default ~/.cache/huggingface/hub) in huggingface_hub's layout, in \
            parallel; an interrupted pull resumes where it stopped, and every file is checked against its \
            sha256 (LFS files) or git hash. Afterwards `--model REPO` finds it. HF_ENDPOINT, HF_TOKEN, \
            HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE are honoured. Prints the snapshot folder.
            """
    )

    @Argument(help: "Repository id.")
    var repo: String = "Tongyi-MAI/Z-Image-Turbo"

    @Option(help: "Branch, tag or commit.")
    var revision: String = "main"

    @Option(help: ArgumentHelp("Only files matching this pattern (fnmatch, as huggingface_hub's allow_patterns; repeatable), e.g. 'tokenizer/*'.",
                               valueName: "pattern"))
    var include: [String] = []

    @Option(help: ArgumentHelp("Skip files matching this pattern (repeatable).", valueName: "pattern"))
    var exclude: [String] = []

    @Option(help: "Files downloaded at once.")
    var jobs: Int = 8

    /// An empty command; ArgumentParser fills in the options.
    public init() {}

    /// Checks the options before `run` (ArgumentParser calls it first).
    public func validate() throws {
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be 1 to 64") }
        do { _ = try RepositoryID(repo) } catch { throw ValidationError("\(error)") }
    }

    /// Runs the command.
    public func run() async throws {
        let environment = HubEnvironment.current()
        let downloader = SnapshotDownloader(environment: environment, parallelism: jobs)
        let line = PullProgressLine(interactive: isatty(STDERR_FILENO) == 1)
        let started = Date()
        let result: SnapshotDownloader.Result
        do {
            result = try await downloader.pull(repo: RepositoryID(repo), revision: revision, include: include,
                                               exclude: exclude) { line.update($0) }
        } catch let error as HubError {
            line.finish()
            throw CLIError("\(error)")
        }
        line.finish()
        let seconds = Date().timeIntervalSince(started)
        FileHandle.standardError.write(Data((environment.offline
            ? "offline: \(repo)@\(revision) is in the cache\n"
            : String(format: "%@@%@ (commit %@): %d file(s), %@ downloaded in %.1f s\n", repo, revision,
                     String(result.commit.prefix(12)), result.files, DownloadSize.format(result.downloadedBytes),
                     seconds)).utf8))
        print(result.snapshot)
    }
}

/// One progress line on standard error, redrawn at most 10 times a second on a terminal; elsewhere
/// one line per finished file.
final class PullProgressLine: Sendable {
    let interactive: Bool
    private let state = NIOLockedValueBox((last: Date.distantPast, start: Date(), drawn: false))

    init(interactive: Bool) { self.interactive = interactive }

    func update(_ progress: SnapshotDownloader.Progress) {
        if !interactive {
            if let finished = progress.finished {
                write("[\(progress.doneFiles)/\(progress.totalFiles)] \(finished)\n")
            }
            return
        }
        let now = Date()
        let draw = state.withLockedValue { value -> (Bool, Double) in
            guard now.timeIntervalSince(value.last) >= 0.1 || progress.doneFiles == progress.totalFiles else {
                return (false, 0)
            }
            value.last = now
            value.drawn = true
            return (true, now.timeIntervalSince(value.start))
        }
        guard draw.0 else { return }
        let total = max(progress.totalBytes, 1), done = min(max(progress.doneBytes, 0), total)
        let width = 30, filled = Int(Double(width) * Double(done) / Double(total))
        let rate = Double(done) / max(draw.1, 1e-3)
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        write("\r[\(bar)] \(DownloadSize.format(done)) / \(DownloadSize.format(progress.totalBytes))  "
            + "\(DownloadSize.format(Int64(rate)))/s  \(progress.doneFiles)/\(progress.totalFiles) files   ")
    }

    func finish() {
        if interactive, state.withLockedValue({ $0.drawn }) { write("\n") }
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
