/// The weights of an HF model folder: `model.safetensors`, or shards listed in
/// `model.safetensors.index.json` (`{"metadata": {...}, "weight_map": {tensor: file}}`).
public final class ShardedSafeTensors: Sendable {
    public let folder: String
    /// All tensors, shard by shard in file order.
    public let tensors: [SafeTensorInfo]
    private let shardOfTensor: [String: Int]
    private let shards: [SafeTensorsFile]

    public init(folder: String) throws {
        self.folder = folder
        let indexPath = FileSystem.join(folder, "model.safetensors.index.json")
        let singlePath = FileSystem.join(folder, "model.safetensors")
        if FileSystem.kind(indexPath) == .file {
            let json = try JSONValue.parse(contentsOf: indexPath)
            guard let weightMap = json["weight_map"]?.objectValue else {
                throw FormatError(indexPath, "missing object field 'weight_map'")
            }
            var shardNames: [String] = []
            var shardNumber: [String: Int] = [:]
            var expected: [(tensor: String, shard: Int)] = []
            for (tensor, value) in weightMap {
                guard let file = value.stringValue, !file.contains("/"), !file.isEmpty else {
                    throw FormatError(indexPath, "weight_map.\(tensor) must be a file name in the same folder")
                }
                if shardNumber[file] == nil {
                    shardNumber[file] = shardNames.count
                    shardNames.append(file)
                }
                expected.append((tensor, shardNumber[file]!))
            }
            shards = try shardNames.map { name in
                let p = FileSystem.join(folder, name)
                guard FileSystem.kind(p) == .file else { throw FormatError(indexPath, "shard '\(name)' listed in weight_map does not exist") }
                return try SafeTensorsFile(path: p)
            }
            var owner: [String: Int] = [:]
            for (tensor, shard) in expected {
                guard shards[shard].info(tensor) != nil else {
                    throw FormatError(shards[shard].path, "tensor '\(tensor)' is listed in model.safetensors.index.json but not stored in this shard")
                }
                owner[tensor] = shard
            }
            shardOfTensor = owner
            tensors = shards.enumerated().flatMap { s, file in file.tensors.filter { owner[$0.name] == s } }
        } else if FileSystem.kind(singlePath) == .file {
            let file = try SafeTensorsFile(path: singlePath)
            shards = [file]
            tensors = file.tensors
            shardOfTensor = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, 0) })
        } else {
            let hasPickle = FileSystem.kind(FileSystem.join(folder, "pytorch_model.bin")) == .file
            throw FormatError(folder, hasPickle
                ? "only pytorch_model.bin found; Finch reads safetensors only (convert with transformers' save_pretrained(safe_serialization=True))"
                : "no model.safetensors or model.safetensors.index.json")
        }
    }

    private func shard(_ name: String) throws -> SafeTensorsFile {
        guard let s = shardOfTensor[name] else { throw FormatError(folder, "no tensor named '\(name)'") }
        return shards[s]
    }

    /// The shard file that stores tensor `name`, or nil.
    public func path(of name: String) -> String? { shardOfTensor[name].map { shards[$0].path } }

    public func data(_ name: String) throws -> UnsafeRawBufferPointer { try shard(name).data(name) }
    public func float32(_ name: String) throws -> [Float] { try shard(name).float32(name) }
}
