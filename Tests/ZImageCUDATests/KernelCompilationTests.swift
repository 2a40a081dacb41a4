import Foundation
import Testing
import ZImageCUDA

/// NVRTC runs without a GPU, so CI compiles every kernel for sm_90 (Hopper).
/// `ZIMAGE_NVRTC_LIBRARY` names a libnvrtc to use (scripts/test.sh points it at the pip wheel);
/// with `ZIMAGE_REQUIRE_NVRTC=1` a missing NVRTC fails the suite instead of skipping it.
enum NVRTCForTests {
    static let environment = ProcessInfo.processInfo.environment
    static let compiler: NVRTC? = try? NVRTC(extraCandidates: environment["ZIMAGE_NVRTC_LIBRARY"].map { [$0] } ?? [])
    static let required = environment["ZIMAGE_REQUIRE_NVRTC"] == "1"
    static var available: Bool { compiler != nil }
}

@Suite struct KernelCompilationTests {
    @Test func nvrtcIsPresentWhenRequired() {
        if NVRTCForTests.required {
            #expect(NVRTCForTests.available, "ZIMAGE_REQUIRE_NVRTC=1 but libnvrtc could not be loaded")
        }
    }

    @Test(.enabled(if: NVRTCForTests.available))
    func everyKernelCompilesForHopper() throws {
        let nvrtc = try #require(NVRTCForTests.compiler)
        let cubin = try nvrtc.compile(source: CUDAKernels.source, name: "zimage_kernels.cu", architecture: 90,
                                      options: CUDAKernels.compileOptions)
        // An ELF image whose symbol table names every kernel the backend launches.
        #expect(cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]))
        let text = String(decoding: cubin, as: UTF8.self)
        for name in CUDAKernels.entryPoints { #expect(text.contains(name), "\(name) missing from the CUBIN") }
        #expect(CUDAKernels.entryPoints.count == 3 * 9 + 6 + 4 * 3 + 22 + 7)   // + 7: weight_formats.cu (int8, widening)
    }

    @Test(.enabled(if: NVRTCForTests.available))
    func compileErrorsCarryTheLog() throws {
        let nvrtc = try #require(NVRTCForTests.compiler)
        #expect {
            try nvrtc.compile(source: "extern \"C\" __global__ void k() { undefined_thing(); }", name: "bad.cu",
                              architecture: 90)
        } throws: { error in
            guard case CUDAError.compilation(_, let code, _, let log) = error else { return false }
            return code == 6 && log.contains("undefined_thing")
        }
    }
}

@Suite struct KernelCacheTests {
    @Test func secondRequestIsServedFromDisk() throws {
        let directory = NSTemporaryDirectory() + "zimage-kernel-cache-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = KernelCache(directory: directory)
        var compilations = 0
        let compile = { () -> [UInt8] in
            compilations += 1
            return [1, 2, 3, UInt8(compilations)]
        }
        let first = try cache.cubin(source: "a", options: ["-x"], architecture: 90, compilerVersion: (13, 0),
                                    compile: compile)
        let second = try cache.cubin(source: "a", options: ["-x"], architecture: 90, compilerVersion: (13, 0),
                                     compile: compile)
        #expect(first == second && compilations == 1)
        // Any part of the key changing means a new compilation.
        _ = try cache.cubin(source: "b", options: ["-x"], architecture: 90, compilerVersion: (13, 0), compile: compile)
        _ = try cache.cubin(source: "a", options: ["-y"], architecture: 90, compilerVersion: (13, 0), compile: compile)
        _ = try cache.cubin(source: "a", options: ["-x"], architecture: 100, compilerVersion: (13, 0), compile: compile)
        _ = try cache.cubin(source: "a", options: ["-x"], architecture: 90, compilerVersion: (12, 9), compile: compile)
        #expect(compilations == 5)
    }

    @Test func compilationErrorsAreNotCached() throws {
        let directory = NSTemporaryDirectory() + "zimage-kernel-cache-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = KernelCache(directory: directory)
        struct Failure: Error {}
        #expect(throws: Failure.self) {
            try cache.cubin(source: "a", options: [], architecture: 90, compilerVersion: (13, 0)) { throw Failure() }
        }
        let cubin = try cache.cubin(source: "a", options: [], architecture: 90, compilerVersion: (13, 0)) { [7] }
        #expect(cubin == [7])
    }
}

@Suite struct CUDAAvailabilityTests {
    /// Where no driver is installed (CI), opening the backend says so in words.
    @Test func missingDriverIsAClearError() {
        guard (try? CUDADriver.shared()) == nil else { return }   // a GPU machine: nothing to check here
        #expect {
            try CUDABackend()
        } throws: { error in
            guard case CUDAError.libraryNotFound(let library, _) = error else { return false }
            return library == "libcuda" && "\(error)".hasPrefix("no CUDA driver found")
        }
    }
}

/// The `.cu` files are the source of the fused kernels; KernelSources.swift embeds them and must
/// not go stale (tools/kernels/embed_kernels.py rewrites it).
@Suite struct KernelSourcesTests {
    @Test func embeddedKernelsEqualTheCUFiles() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/ZImageCUDA/Kernels").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".cu") || $0.hasSuffix(".cuh") }
            .sorted { ($0.hasSuffix(".cuh") ? 0 : 1, $0) < ($1.hasSuffix(".cuh") ? 0 : 1, $1) }   // headers first
        #expect(files == CUDAKernels.embeddedFiles.map(\.name), "run tools/kernels/embed_kernels.py")
        for (name, source) in CUDAKernels.embeddedFiles {
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            #expect(text.trimmingCharacters(in: .newlines) == source.trimmingCharacters(in: .newlines),
                    "\(name) differs from KernelSources.swift: run tools/kernels/embed_kernels.py")
        }
    }
}
