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
