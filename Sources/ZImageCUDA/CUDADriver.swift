#if canImport(Glibc)
import Glibc
#endif
import ZImageTensor

/// One GPU as the driver describes it.
public struct CUDADeviceInfo: Sendable, Equatable {
    public var ordinal: Int
    public var name: String
    public var computeCapability: (major: Int, minor: Int)
    public var multiprocessors: Int
    public var totalMemory: Int

    public static func == (a: Self, b: Self) -> Bool {
        a.ordinal == b.ordinal && a.name == b.name && a.computeCapability == b.computeCapability
            && a.multiprocessors == b.multiprocessors && a.totalMemory == b.totalMemory
    }
}

typealias CUresult = Int32
typealias CUdeviceptr = UInt64

/// The CUDA driver API (`libcuda.so.1`), opened with `dlopen`. Symbol names follow cuda.h's
/// versioned mappings (docs/notes/cuda-abi.md).
public final class CUDADriver: @unchecked Sendable {
    // Immutable after init: function pointers only.
    let cuInit: @convention(c) (UInt32) -> CUresult
    let cuDriverGetVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> CUresult
    let cuDeviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> CUresult
    let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> CUresult
    let cuDeviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> CUresult
    let cuDeviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> CUresult
    let cuDeviceTotalMem: @convention(c) (UnsafeMutablePointer<Int>, Int32) -> CUresult
    let cuDevicePrimaryCtxRetain: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32) -> CUresult
    let cuCtxSetCurrent: @convention(c) (OpaquePointer?) -> CUresult
    let cuMemAlloc: @convention(c) (UnsafeMutablePointer<CUdeviceptr>, Int) -> CUresult
    let cuMemFree: @convention(c) (CUdeviceptr) -> CUresult
    let cuMemGetInfo: @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> CUresult
    let cuMemHostAlloc: @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>, Int, UInt32) -> CUresult
    let cuMemFreeHost: @convention(c) (UnsafeMutableRawPointer?) -> CUresult
    let cuMemcpyHtoDAsync: @convention(c) (CUdeviceptr, UnsafeRawPointer?, Int, OpaquePointer?) -> CUresult
    let cuMemcpyDtoHAsync: @convention(c) (UnsafeMutableRawPointer?, CUdeviceptr, Int, OpaquePointer?) -> CUresult
    let cuMemcpyDtoDAsync: @convention(c) (CUdeviceptr, CUdeviceptr, Int, OpaquePointer?) -> CUresult
    let cuMemsetD8Async: @convention(c) (CUdeviceptr, UInt8, Int, OpaquePointer?) -> CUresult
    let cuStreamCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> CUresult
    let cuStreamSynchronize: @convention(c) (OpaquePointer?) -> CUresult
    let cuStreamWaitEvent: @convention(c) (OpaquePointer?, OpaquePointer?, UInt32) -> CUresult
    let cuEventCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> CUresult
    let cuEventRecord: @convention(c) (OpaquePointer?, OpaquePointer?) -> CUresult
    let cuEventSynchronize: @convention(c) (OpaquePointer?) -> CUresult
    let cuEventElapsedTime: @convention(c) (UnsafeMutablePointer<Float>, OpaquePointer?, OpaquePointer?) -> CUresult
    let cuEventDestroy: @convention(c) (OpaquePointer?) -> CUresult
    let cuModuleLoadData: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafeRawPointer) -> CUresult
    let cuModuleGetFunction: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?,
                                             UnsafePointer<CChar>) -> CUresult
    let cuLaunchKernel: @convention(c) (OpaquePointer?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
                                        OpaquePointer?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                        UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> CUresult
    let cuFuncSetAttribute: @convention(c) (OpaquePointer?, Int32, Int32) -> CUresult
    let cuGetErrorName: @convention(c) (CUresult, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> CUresult
    let cuGetErrorString: @convention(c) (CUresult, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> CUresult
    private let library: DynamicLibrary

    private static let loaded: Result<CUDADriver, CUDAError> = {
        do { return .success(try CUDADriver()) } catch let error as CUDAError { return .failure(error) } catch {
            return .failure(.libraryNotFound(library: "libcuda", attempts: ["\(error)"]))
        }
    }()

    /// The process-wide driver, initialised once; a typed error where there is no driver or GPU.
    public static func shared() throws -> CUDADriver { try loaded.get() }

    private init() throws {
        let lib = try DynamicLibrary(candidates: ["libcuda.so.1", "libcuda.so"], library: "libcuda")
        library = lib
        cuInit = try lib.function("cuInit")
        cuDriverGetVersion = try lib.function("cuDriverGetVersion")
        cuDeviceGetCount = try lib.function("cuDeviceGetCount")
        cuDeviceGet = try lib.function("cuDeviceGet")
        cuDeviceGetName = try lib.function("cuDeviceGetName")
        cuDeviceGetAttribute = try lib.function("cuDeviceGetAttribute")
        cuDeviceTotalMem = try lib.function("cuDeviceTotalMem_v2")
        cuDevicePrimaryCtxRetain = try lib.function("cuDevicePrimaryCtxRetain")
        cuCtxSetCurrent = try lib.function("cuCtxSetCurrent")
        cuMemAlloc = try lib.function("cuMemAlloc_v2")
        cuMemFree = try lib.function("cuMemFree_v2")
        cuMemGetInfo = try lib.function("cuMemGetInfo_v2")
        cuMemHostAlloc = try lib.function("cuMemHostAlloc")
        cuMemFreeHost = try lib.function("cuMemFreeHost")
        cuMemcpyHtoDAsync = try lib.function("cuMemcpyHtoDAsync_v2")
        cuMemcpyDtoHAsync = try lib.function("cuMemcpyDtoHAsync_v2")
        cuMemcpyDtoDAsync = try lib.function("cuMemcpyDtoDAsync_v2")
        cuMemsetD8Async = try lib.function("cuMemsetD8Async")
        cuStreamCreate = try lib.function("cuStreamCreate")
        cuStreamSynchronize = try lib.function("cuStreamSynchronize")
        cuStreamWaitEvent = try lib.function("cuStreamWaitEvent")
        cuEventCreate = try lib.function("cuEventCreate")
        cuEventRecord = try lib.function("cuEventRecord")
        cuEventSynchronize = try lib.function("cuEventSynchronize")
        cuEventElapsedTime = try lib.function(anyOf: ["cuEventElapsedTime_v2", "cuEventElapsedTime"])
        cuEventDestroy = try lib.function("cuEventDestroy_v2")
        cuModuleLoadData = try lib.function("cuModuleLoadData")
        cuModuleGetFunction = try lib.function("cuModuleGetFunction")
        cuLaunchKernel = try lib.function("cuLaunchKernel")
        cuFuncSetAttribute = try lib.function("cuFuncSetAttribute")
        cuGetErrorName = try lib.function("cuGetErrorName")
        cuGetErrorString = try lib.function("cuGetErrorString")
        try check(cuInit(0), "cuInit")
    }

    /// Throws a `CUDAError.driver` naming `call` unless `result` is `CUDA_SUCCESS`.
    func check(_ result: CUresult, _ call: String) throws {
        guard result != 0 else { return }
        var name: UnsafePointer<CChar>?
        var message: UnsafePointer<CChar>?
        _ = cuGetErrorName(result, &name)
        _ = cuGetErrorString(result, &message)
        throw CUDAError.driver(call: call, code: result, name: name.map { String(cString: $0) } ?? "unknown",
                               message: message.map { String(cString: $0) } ?? "")
    }

    /// The driver's CUDA version, e.g. 13000 for 13.0.
    public func version() throws -> Int {
        var value: Int32 = 0
        try check(cuDriverGetVersion(&value), "cuDriverGetVersion")
        return Int(value)
    }

    /// Free and total memory of GPU `ordinal` (its primary context made current; no stream, no
    /// libraries opened): what a planner reads without starting a backend.
    public func memoryInfo(ordinal: Int) throws -> (free: Int, total: Int) {
        var handle: Int32 = 0
        try check(cuDeviceGet(&handle, Int32(ordinal)), "cuDeviceGet")
        var context: OpaquePointer?
        try check(cuDevicePrimaryCtxRetain(&context, handle), "cuDevicePrimaryCtxRetain")
        try check(cuCtxSetCurrent(context), "cuCtxSetCurrent")
        var free = 0, total = 0
        try check(cuMemGetInfo(&free, &total), "cuMemGetInfo")
        return (free, total)
    }

    /// Every GPU the driver sees.
    public func devices() throws -> [CUDADeviceInfo] {
        var count: Int32 = 0
        try check(cuDeviceGetCount(&count), "cuDeviceGetCount")
        return try (0..<Int(count)).map { try device($0) }
    }

    /// A description of GPU `ordinal`.
    public func device(_ ordinal: Int) throws -> CUDADeviceInfo {
        var count: Int32 = 0
        try check(cuDeviceGetCount(&count), "cuDeviceGetCount")
        guard ordinal >= 0, ordinal < count else { throw CUDAError.noSuchDevice(ordinal: ordinal, count: Int(count)) }
        var handle: Int32 = 0
        try check(cuDeviceGet(&handle, Int32(ordinal)), "cuDeviceGet")
        var name = [CChar](repeating: 0, count: 256)
        try check(cuDeviceGetName(&name, 255, handle), "cuDeviceGetName")
        func attribute(_ code: Int32) throws -> Int {
            var value: Int32 = 0
            try check(cuDeviceGetAttribute(&value, code, handle), "cuDeviceGetAttribute(\(code))")
            return Int(value)
        }
        var memory = 0
        try check(cuDeviceTotalMem(&memory, handle), "cuDeviceTotalMem")
        let nameText = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return CUDADeviceInfo(ordinal: ordinal, name: nameText,
                              computeCapability: (try attribute(75), try attribute(76)),
                              multiprocessors: try attribute(16), totalMemory: memory)
    }
}
