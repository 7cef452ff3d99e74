// swift-tools-version:6.0
// Finch: preference-tune (DPO) and serve small language models, natively in Swift.
// Module map and one-way dependencies: see DESIGN.md §2.
import PackageDescription

#if os(Linux)
let blasDependency: [Target.Dependency] = ["CBLAS"]
#else
let blasDependency: [Target.Dependency] = []
#endif

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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS on Linux (`apt-get install libopenblas-dev`); Accelerate on Apple platforms.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .target(
            name: "FinchCore",
            dependencies: blasDependency
        ),
        .target(name: "FinchFormats", dependencies: ["FinchCore"]),
        // A Jinja2 interpreter for chat templates: generic, so it is its own module under FinchTokenizers.
        .target(name: "FinchJinja"),
        .target(name: "FinchTokenizers", dependencies: ["FinchCore", "FinchFormats", "FinchJinja"]),
        .target(name: "FinchModels", dependencies: ["FinchCore", "FinchFormats"]),
        .target(name: "FinchGeneration", dependencies: ["FinchCore", "FinchFormats", "FinchTokenizers", "FinchModels"]),
        .executableTarget(
            name: "finch",
            dependencies: [
                "FinchCore", "FinchFormats", "FinchJinja", "FinchTokenizers", "FinchModels", "FinchGeneration",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "FinchCoreTests", dependencies: ["FinchCore"]),
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
        .testTarget(name: "FinchCLITests", dependencies: ["finch", "FinchCore", "FinchFormats"]),
    ]
)
