// swift-tools-version:6.0
// Finch: preference-tune (DPO) and serve small language models, natively in Swift.
// Module map and one-way dependencies: see DESIGN.md §2.
import Foundation
import PackageDescription

#if os(Linux)
let blasDependency: [Target.Dependency] = ["CBLAS"]
#else
let blasDependency: [Target.Dependency] = []
#endif

// The compute kernels (FinchCore) are compiled for the CPU of the building machine, as llama.cpp
// builds by default (GGML_NATIVE): on x86-64 that turns their 16-lane vectors into AVX-512 or AVX2
// instructions instead of baseline SSE2, about 2× faster decoding. `FINCH_TARGET_CPU=x86-64` (or
// any LLVM CPU name) builds for another CPU; `FINCH_TARGET_CPU=generic` leaves the flag out.
#if arch(x86_64)
let targetCPU = ProcessInfo.processInfo.environment["FINCH_TARGET_CPU"] ?? "native"
#else
let targetCPU = ProcessInfo.processInfo.environment["FINCH_TARGET_CPU"] ?? "generic"
#endif
let kernelSettings: [SwiftSetting] = targetCPU == "generic" ? [] : [.unsafeFlags(["-target-cpu", targetCPU])]

let package = Package(
    name: "Finch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "finch", targets: ["finch"]),
        .library(name: "FinchCore", targets: ["FinchCore"]),
        .library(name: "FinchFormats", targets: ["FinchFormats"]),
        .library(name: "FinchJinja", targets: ["FinchJinja"]),
        .library(name: "FinchTokenizers", targets: ["FinchTokenizers"]),
        .library(name: "FinchModels", targets: ["FinchModels"]),
        .library(name: "FinchGeneration", targets: ["FinchGeneration"]),
        .library(name: "FinchTraining", targets: ["FinchTraining"]),
        .library(name: "FinchServer", targets: ["FinchServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
    ],
    targets: [
        // OpenBLAS on Linux (`apt-get install libopenblas-dev`); Accelerate on Apple platforms.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .target(
            name: "FinchCore",
            dependencies: blasDependency,
            swiftSettings: kernelSettings
        ),
        .target(name: "FinchFormats", dependencies: ["FinchCore"]),
        // A Jinja2 interpreter for chat templates: generic, so it is its own module under FinchTokenizers.
        .target(name: "FinchJinja"),
        .target(name: "FinchTokenizers", dependencies: ["FinchCore", "FinchFormats", "FinchJinja"]),
        .target(name: "FinchModels", dependencies: ["FinchCore", "FinchFormats"]),
        .target(name: "FinchGeneration", dependencies: ["FinchCore", "FinchFormats", "FinchTokenizers", "FinchModels"]),
        // Optimizer, schedules and the training loop's bookkeeping. Compiled for the host CPU like
        // FinchCore: AdamW's fused multiply-adds (which torch's fused kernel uses) become single
        // instructions instead of `fmaf` calls.
        .target(
            name: "FinchTraining",
            dependencies: ["FinchCore", "FinchFormats", "FinchJinja", "FinchTokenizers", "FinchModels", "FinchGeneration"],
            swiftSettings: kernelSettings
        ),
        // The HTTP server (web chat page, OpenAI-compatible API): the only module that imports an HTTP stack.
        .target(
            name: "FinchServer",
            dependencies: [
                "FinchCore", "FinchFormats", "FinchJinja", "FinchTokenizers", "FinchModels", "FinchGeneration",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .executableTarget(
            name: "finch",
            dependencies: [
                "FinchCore", "FinchFormats", "FinchJinja", "FinchTokenizers", "FinchModels", "FinchGeneration", "FinchTraining",
                "FinchServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // FinchFormats reads the bitsandbytes fixtures (safetensors, JSON) and SmolLM2's weights.
        .testTarget(name: "FinchCoreTests", dependencies: ["FinchCore", "FinchFormats"], exclude: ["Fixtures"]),
        .testTarget(
            name: "FinchFormatsTests",
            dependencies: ["FinchCore", "FinchFormats"],
            exclude: ["Fixtures"]
        ),
        .testTarget(name: "FinchJinjaTests", dependencies: ["FinchJinja"], exclude: ["Fixtures"]),
        .testTarget(
            name: "FinchTokenizersTests",
            dependencies: ["FinchCore", "FinchFormats", "FinchTokenizers"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "FinchModelsTests",
            dependencies: ["FinchCore", "FinchFormats", "FinchTokenizers", "FinchModels", "FinchGeneration"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "FinchServerTests",
            dependencies: [
                "FinchCore", "FinchFormats", "FinchJinja", "FinchTokenizers", "FinchModels", "FinchGeneration", "FinchServer",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "FinchCLITests", dependencies: ["finch", "FinchCore", "FinchFormats", "FinchModels", "FinchTokenizers", "FinchTraining"]),
        .testTarget(
            name: "FinchTrainingTests",
            dependencies: ["FinchCore", "FinchFormats", "FinchJinja", "FinchModels", "FinchTokenizers", "FinchGeneration", "FinchTraining"],
            exclude: ["Fixtures"]
        ),
    ]
)
