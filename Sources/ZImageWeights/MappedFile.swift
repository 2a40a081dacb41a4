#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file, unmapped when released.
public final class MappedFile {
    /// The file's path.
    public let path: String
    /// The mapped bytes (empty for an empty file).
    public let bytes: UnsafeRawBufferPointer

    /// Maps `path`; throws `SafetensorsError.cannotOpen` with the system's reason.
    public init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw SafetensorsError.cannotOpen(path: path, reason: Self.errnoText()) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw SafetensorsError.cannotOpen(path: path, reason: Self.errnoText())
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SafetensorsError.cannotOpen(path: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let address, address != MAP_FAILED else {
            throw SafetensorsError.cannotOpen(path: path, reason: "mmap failed: \(Self.errnoText())")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
