import Foundation

/// NVRTC, the run-time CUDA C++ compiler, opened with `dlopen`. It needs no GPU, so CI uses it
/// to compile every kernel for sm_90.
public final class NVRTC: @unchecked Sendable {
    // Immutable after init: function pointers only.
    private typealias Result = Int32
    private let nvrtcVersion: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Result
    private let nvrtcCreateProgram: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafePointer<CChar>,
                                                    UnsafePointer<CChar>?, Int32, UnsafePointer<UnsafePointer<CChar>?>?,
                                                    UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    private let nvrtcCompileProgram: @convention(c) (OpaquePointer?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    private let nvrtcGetProgramLogSize: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>) -> Result
    private let nvrtcGetProgramLog: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>) -> Result
    private let nvrtcGetCUBINSize: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>) -> Result
    private let nvrtcGetCUBIN: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>) -> Result
    private let nvrtcDestroyProgram: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Result
    private let nvrtcGetErrorString: @convention(c) (Result) -> UnsafePointer<CChar>?
    private let library: DynamicLibrary
    /// Where the library was found.
    public var path: String { library.path }

    /// The sonames and paths tried, in order, after `extraCandidates`. NVRTC must stay in the folder
    /// of its `libnvrtc-builtins`, so wheel installs are named by their full path.
    public static let defaultCandidates = [
        "libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.13", "libnvrtc.so.12",
        "/usr/local/cuda/lib64/libnvrtc.so.12", "libnvrtc.so",
    ]

    /// Opens NVRTC, trying `extraCandidates` first (for example a pip wheel's `libnvrtc.so.12`).
    public init(extraCandidates: [String] = []) throws {
        let lib = try DynamicLibrary(candidates: extraCandidates + Self.defaultCandidates, library: "libnvrtc")
        library = lib
        nvrtcVersion = try lib.function("nvrtcVersion")
        nvrtcCreateProgram = try lib.function("nvrtcCreateProgram")
        nvrtcCompileProgram = try lib.function("nvrtcCompileProgram")
        nvrtcGetProgramLogSize = try lib.function("nvrtcGetProgramLogSize")
        nvrtcGetProgramLog = try lib.function("nvrtcGetProgramLog")
        nvrtcGetCUBINSize = try lib.function("nvrtcGetCUBINSize")
        nvrtcGetCUBIN = try lib.function("nvrtcGetCUBIN")
        nvrtcDestroyProgram = try lib.function("nvrtcDestroyProgram")
        nvrtcGetErrorString = try lib.function("nvrtcGetErrorString")
    }

    /// NVRTC's version as `(major, minor)`.
    public func version() -> (major: Int, minor: Int) {
        var major: Int32 = 0, minor: Int32 = 0
        _ = nvrtcVersion(&major, &minor)
        return (Int(major), Int(minor))
    }

    private func message(_ code: Result) -> String {
        nvrtcGetErrorString(code).map { String(cString: $0) } ?? "NVRTC error \(code)"
    }

    /// Compiles `source` to a CUBIN for `sm_<architecture>` (e.g. 90).
    public func compile(source: String, name: String, architecture: Int, options: [String] = []) throws -> [UInt8] {
        var program: OpaquePointer?
        var code = nvrtcCreateProgram(&program, source, name, 0, nil, nil)
        guard code == 0 else {
            throw CUDAError.compilation(call: "nvrtcCreateProgram", code: code, message: message(code), log: "")
        }
        defer { _ = nvrtcDestroyProgram(&program) }
        let arguments = ["--gpu-architecture=sm_\(architecture)"] + options
        let cStrings = arguments.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let pointers = cStrings.map { UnsafePointer<CChar>($0) }
        code = pointers.withUnsafeBufferPointer { nvrtcCompileProgram(program, Int32(arguments.count), $0.baseAddress) }
        guard code == 0 else {
            throw CUDAError.compilation(call: "nvrtcCompileProgram(\(name))", code: code, message: message(code),
                                        log: log(program))
        }
        var size = 0
        code = nvrtcGetCUBINSize(program, &size)
        guard code == 0, size > 0 else {
            throw CUDAError.compilation(call: "nvrtcGetCUBINSize", code: code, message: message(code), log: "")
        }
        var cubin = [CChar](repeating: 0, count: size)
        code = nvrtcGetCUBIN(program, &cubin)
        guard code == 0 else {
            throw CUDAError.compilation(call: "nvrtcGetCUBIN", code: code, message: message(code), log: "")
        }
        return cubin.map { UInt8(bitPattern: $0) }
    }

    private func log(_ program: OpaquePointer?) -> String {
        var size = 0
        guard nvrtcGetProgramLogSize(program, &size) == 0, size > 1 else { return "" }
        var text = [CChar](repeating: 0, count: size)
        guard nvrtcGetProgramLog(program, &text) == 0 else { return "" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Compiled kernels cached on disk, keyed by source, options, architecture and NVRTC version,
/// so only the first run on a machine pays for compilation.
public struct KernelCache: Sendable {
    /// The cache folder (created on first write).
    public let directory: String?

    public init(directory: String?) { self.directory = directory }

    /// `$XDG_CACHE_HOME/zimage/kernels`, else `~/.cache/zimage/kernels`.
    public static func defaultDirectory() -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/zimage/kernels" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.cache/zimage/kernels" }
        return nil
    }

    /// The CUBIN for this key, from the cache or by running `compile` (whose result is stored).
    public func cubin(source: String, options: [String], architecture: Int, compilerVersion: (Int, Int),
                      compile: () throws -> [UInt8]) throws -> [UInt8] {
        let key = "nvrtc \(compilerVersion.0).\(compilerVersion.1)|sm_\(architecture)|\(options.joined(separator: " "))|"
            + source
        let name = Self.hash(key)
        guard let directory else { return try compile() }
        let path = directory + "/\(name).cubin"
        if let data = FileManager.default.contents(atPath: path),
           let stored = FileManager.default.contents(atPath: path + ".key"), stored == Data(key.utf8) {
            return [UInt8](data)
        }
        let cubin = try compile()
        // A cache that cannot be written only costs a recompilation next time.
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = directory + "/.\(name).\(ProcessInfo.processInfo.processIdentifier)"
        if (try? Data(cubin).write(to: URL(fileURLWithPath: temporary + ".cubin"))) != nil,
           (try? Data(key.utf8).write(to: URL(fileURLWithPath: temporary + ".key"))) != nil {
            _ = rename(temporary + ".key", path + ".key")
            _ = rename(temporary + ".cubin", path)
        }
        return cubin
    }

    /// 64-bit FNV-1a of `text`, as 16 hex digits.
    static func hash(_ text: String) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
