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
    static func preloadInBackground() {
        _ = preloadOnce
    }

    private static let preloadOnce: Void = {
        Thread.detachNewThread {
            for name in CUBLASLt.candidates where dlopen(name, RTLD_NOW | RTLD_LOCAL) != nil { break }
            // cuDNN opens its parts from its own folder (or the library path, for a bare soname).
            guard let cudnn = CUDNN.candidates().first(where: { dlopen($0, RTLD_NOW | RTLD_LOCAL) != nil }) else { return }
            let folder = cudnn.contains("/") ? String(cudnn[..<(cudnn.lastIndex(of: "/") ?? cudnn.endIndex)]) + "/" : ""
            for part in ["graph", "engines_precompiled", "engines_runtime_compiled", "heuristic", "ops", "cnn"] {
                _ = dlopen(folder + "libcudnn_\(part).so.9", RTLD_NOW | RTLD_LOCAL)
            }
        }
    }()
}
