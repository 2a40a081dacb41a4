import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A shared library opened with `dlopen`, so the binary needs no CUDA at build or link time.
final class DynamicLibrary: @unchecked Sendable {
    // Immutable after init; dlsym is thread-safe.
    let path: String
    private let handle: UnsafeMutableRawPointer

    /// Opens the first of `candidates` that loads (sonames or absolute paths).
    init(candidates: [String], library: String) throws {
        var failures: [String] = []
        for candidate in candidates {
            if let handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL) {
                self.handle = handle
                self.path = candidate
                return
            }
            failures.append(dlerror().map { String(cString: $0) } ?? candidate)
        }
        throw CUDAError.libraryNotFound(library: library, attempts: failures)
    }

    /// The C function `name`, typed as `T` (a `@convention(c)` function type).
    func function<T>(_ name: String, as type: T.Type = T.self) throws -> T {
        guard let symbol = dlsym(handle, name) else {
            throw CUDAError.missingSymbol(library: path, symbol: name)
        }
        return unsafeBitCast(symbol, to: T.self)
    }

    /// The first of `names` that the library exports.
    func function<T>(anyOf names: [String], as type: T.Type = T.self) throws -> T {
        for name in names {
            if let symbol = dlsym(handle, name) { return unsafeBitCast(symbol, to: T.self) }
        }
        throw CUDAError.missingSymbol(library: path, symbol: names.joined(separator: " or "))
    }
}

extension DynamicLibrary {
    /// cuDNN's engine libraries (hundreds of MB) and cuBLASLt, opened on a background thread so
    /// their loading overlaps the weights' upload instead of delaying the first image. Each is
    /// opened once more (and kept) by the code that uses it; dlopen's own lock orders the two.
    /// A process that exits meanwhile (a bad `--model` after the backend came up) waits for the
    /// `dlopen` in progress and opens nothing more: exiting while a library's initialisers run on
    /// another thread crashed the process on its way out.
    static func preloadInBackground() {
        _ = preloadOnce
    }

    private static let preloadLock = NSLock()
    nonisolated(unsafe) private static var exiting = false

    /// Opens `name` unless the process is exiting; false when it did not open (or must stop).
    private static func preload(_ name: String) -> Bool {
        preloadLock.lock()
        defer { preloadLock.unlock() }
        return !exiting && dlopen(name, RTLD_NOW | RTLD_LOCAL) != nil
    }

    private static let preloadOnce: Void = {
        atexit {
            DynamicLibrary.preloadLock.lock()
            DynamicLibrary.exiting = true
            DynamicLibrary.preloadLock.unlock()
        }
        Thread.detachNewThread {
            for name in CUBLASLt.candidates where preload(name) { break }
            // cuDNN opens its parts from its own folder (or the library path, for a bare soname).
            guard let cudnn = CUDNN.candidates().first(where: { preload($0) }) else { return }
            let folder = cudnn.contains("/") ? String(cudnn[..<(cudnn.lastIndex(of: "/") ?? cudnn.endIndex)]) + "/" : ""
            for part in ["graph", "engines_precompiled", "engines_runtime_compiled", "heuristic", "ops", "cnn"] {
                _ = preload(folder + "libcudnn_\(part).so.9")
            }
        }
    }()
}
