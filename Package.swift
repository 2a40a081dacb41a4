// swift-tools-version:6.0
// zimage: a native Swift engine, server and web UI for Tongyi-MAI's Z-Image-Turbo.
//
// One target a layer (see docs/architecture.md):
//   ZImageTensor  -> tensor core: dtypes, shapes, the Backend protocol, Tensor and its ops
//   ZImageCPU     -> CPU backend (OpenBLAS + multithreaded loops)
//   ZImageCUDA    -> CUDA backend (driver API, cuBLASLt, NVRTC; all opened with dlopen)
//   ZImageWeights -> safetensors over mmap, sharded checkpoints, diffusers model directories, verified loads
//   ZImageHub     -> `zimage pull`: Hugging Face Hub downloads into huggingface_hub's cache layout
//   ZImageCLI     -> the `zimage` commands as a library (tested without spawning a process)
//   zimage        -> thin executable
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "zimage",
    products: [
        .executable(name: "zimage", targets: ["zimage"]),
        .library(name: "ZImageTensor", targets: ["ZImageTensor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.60.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
    ],
    targets: [
        .target(name: "ZImageTensor", swiftSettings: swiftSettings),
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "ZImageCPU", dependencies: ["ZImageTensor", "COpenBLAS"], swiftSettings: swiftSettings),
        // Kernels/*.cu are embedded into KernelSources.swift by tools/kernels/embed_kernels.py.
        .target(name: "ZImageCUDA", dependencies: ["ZImageTensor"], exclude: ["Kernels"], swiftSettings: swiftSettings),
        .target(name: "ZImageWeights", dependencies: ["ZImageTensor"], swiftSettings: swiftSettings),
        // The VRAM planner and hardware advisor: cards, cost model, plans (pure Swift, no GPU needed).
        .target(name: "ZImagePlanner", swiftSettings: swiftSettings),
        .target(name: "ZImageTokenizer", swiftSettings: swiftSettings),
        // Downloads from the Hugging Face Hub into its own cache layout (shared with huggingface_hub).
        .target(
            name: "ZImageHub",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // libpng (Debian libpng-dev) behind a small C layer that turns its longjmp errors into return codes.
        .target(name: "CLibPNG", linkerSettings: [.linkedLibrary("png16")]),
        // gzip through zlib: the bundled Qwen tokenizer (Resources/qwen3-tokenizer.json.gz).
        .target(name: "CZlib", linkerSettings: [.linkedLibrary("z")]),
        // Crypto: the A1111 short hash of LoRA files (sha256 of the tensor data) for infotexts.
        .target(
            name: "ZImageModels",
            dependencies: ["ZImageTensor", "ZImageWeights", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ZImagePipeline",
            dependencies: ["ZImageTensor", "ZImageWeights", "ZImageTokenizer", "ZImageModels", "ZImagePlanner", "CLibPNG", "CZlib",
                           .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Resources/qwen3-tokenizer.json.gz")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ZImageServer",
            dependencies: [
                "ZImagePipeline", "ZImageTensor", "ZImageModels", "ZImagePlanner", "ZImageHub",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            ],
            resources: [.copy("Resources/public"), .copy("Resources/openapi.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ZImageCLI",
            dependencies: [
                "ZImageTensor", "ZImageCPU", "ZImageCUDA", "ZImageWeights", "ZImageTokenizer",
                "ZImageModels", "ZImagePipeline", "ZImageServer", "ZImageHub", "ZImagePlanner",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "zimage",
            dependencies: ["ZImageCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        // Fixture paths, relative error and seeded inputs shared by the tests and the bench.
        .target(name: "ZImageTestSupport", dependencies: ["ZImageTensor"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "ZImageBench",
            dependencies: ["ZImageTensor", "ZImageCPU", "ZImageCUDA", "ZImageWeights", "ZImageModels", "ZImageTokenizer",
                           "ZImagePipeline", "ZImageTestSupport"],
            path: "bench/ZImageBench",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ZImageTensorTests", dependencies: ["ZImageTensor", "ZImageCPU", "ZImageWeights", "ZImageTestSupport"]),
        .testTarget(name: "ZImageWeightsTests", dependencies: ["ZImageTensor", "ZImageCPU", "ZImageWeights", "ZImageTestSupport"]),
        .testTarget(name: "ZImageCUDATests", dependencies: ["ZImageTensor", "ZImageCPU", "ZImageCUDA", "ZImageModels",
                                                           "ZImageWeights", "ZImageTestSupport"]),
        .testTarget(name: "ZImageCLITests", dependencies: ["ZImageCLI", "ZImageTestSupport", "ZImagePipeline", "ZImagePlanner",
                                                          "ZImageWeights", "ZImageCPU", "ZImageTensor"]),
        .testTarget(name: "ZImageHubTests", dependencies: ["ZImageHub"]),
        .testTarget(name: "ZImagePlannerTests", dependencies: ["ZImagePlanner"]),
        .testTarget(
            name: "ZImageServerTests",
            dependencies: [
                "ZImageServer", "ZImagePipeline", "ZImageCPU", "ZImageTensor", "ZImageWeights", "ZImageTestSupport",
                "ZImagePlanner",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "ZImageModelsTests",
            dependencies: ["ZImageTensor", "ZImageCPU", "ZImageWeights", "ZImageModels", "ZImageTokenizer", "ZImagePipeline",
                           "ZImageTestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "ZImageTokenizerTests",
            dependencies: ["ZImageTokenizer", "ZImageTensor", "ZImageCPU", "ZImageWeights", "ZImageTestSupport"]
        ),
    ]
)
