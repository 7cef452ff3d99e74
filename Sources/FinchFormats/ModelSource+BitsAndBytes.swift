import FinchCore

/// A linear weight that bitsandbytes quantized before transformers saved it (reference/formats.md
/// §1.8, §1.10), validated and wrapped around the mapped file without copies.
public enum BitsAndBytesWeight: Sendable {
    /// 4-bit: `<m>.weight` (packed U8), `.weight.absmax`, `.weight.quant_map`, nested state when
    /// double-quantized, and `.weight.quant_state.bitsandbytes__nf4|fp4` (JSON).
    case fourBit(Quantized4Bit)
    /// LLM.int8: `<m>.weight` (I8 `[out, in]`), `<m>.SCB` (F32 `[out]`), optionally `<m>.weight_format`.
    case int8Rows(Int8RowQuantized)

    /// The original `[out, in]` shape.
    public var shape: [Int] {
        switch self {
        case .fourBit(let q): q.shape
        case .int8Rows(let q): [q.rows, q.columns]
        }
    }
}

extension ModelSource {
    /// Suffixes of the tensors bitsandbytes saves next to a quantized `<m>.weight`.
    static let bitsAndBytesStateSuffixes = [".weight.absmax", ".weight.quant_map", ".weight.nested_absmax", ".weight.nested_quant_map",
                                            ".weight.quant_state.bitsandbytes__nf4", ".weight.quant_state.bitsandbytes__fp4",
                                            ".SCB", ".weight_format"]

    /// Whether tensor `name` is quantization state of a bitsandbytes weight rather than a parameter.
    public func isBitsAndBytesState(_ name: String) -> Bool {
        quantization != nil && Self.bitsAndBytesStateSuffixes.contains { name.hasSuffix($0) }
    }

    /// The bitsandbytes-quantized weight `name` (`<module>.weight`), or nil when the checkpoint
    /// stores that weight unquantized (embeddings, lm_head, norms, or a plain checkpoint).
    ///
    /// - Throws: `FormatError` naming the file and tensor when the state is inconsistent or uses
    ///   something Finch does not support: a block size other than 64, a non-row-major int8 format, shapes or dtypes that do not match, non-finite scales, unknown
    ///   quant-state fields, or state that config.json's `quantization_config` does not announce.
    public func bitsAndBytesWeight(_ name: String) throws -> BitsAndBytesWeight? {
        guard name.hasSuffix(".weight"), format == .huggingFace else { return nil }
        let module = String(name.dropLast(".weight".count))
        let states = [FourBitType.nf4, .fp4].filter { tensor("\(name).quant_state.bitsandbytes__\($0.rawValue)") != nil }
        if let type = states.first {
            guard states.count == 1 else { throw stateError(name, "has both an nf4 and an fp4 quant_state") }
            return .fourBit(try fourBitWeight(name, type: type))
        }
        if tensor(module + ".SCB") != nil {
            return .int8Rows(try int8Weight(name, module: module))
        }
        for suffix in Self.bitsAndBytesStateSuffixes where suffix.hasPrefix(".weight.") {
            let state = module + suffix
            if tensor(state) != nil {
                throw stateError(state, "bitsandbytes 4-bit state, but '\(name).quant_state.bitsandbytes__nf4' (or __fp4) is missing")
            }
        }
        if let format = tensor(module + ".weight_format") {
            throw stateError(format.name, "bitsandbytes 8-bit state, but '\(module).SCB' is missing")
        }
        return nil
    }

    // MARK: - 4-bit

    private func fourBitWeight(_ name: String, type: FourBitType) throws -> Quantized4Bit {
        let stateName = "\(name).quant_state.bitsandbytes__\(type.rawValue)"
        guard case let .bitsAndBytes4Bit(configType, configDouble, _) = quantization else {
            throw stateError(stateName, "bitsandbytes 4-bit state, but config.json's quantization_config does not say load_in_4bit")
        }
        guard configType == type else {
            throw stateError(stateName, "quant_type \(type.rawValue), but config.json's bnb_4bit_quant_type is \(configType.rawValue)")
        }
        let state = try quantState(stateName)
        let shape = state.shape, count = shape.reduce(1, *)
        guard state.isNested == configDouble else {
            throw stateError(stateName, "\(state.isNested ? "double-quantized" : "plain") scales, but config.json's bnb_4bit_use_double_quant is \(configDouble)")
        }
        let blocks = (count + Quantized4Bit.blockSize - 1) / Quantized4Bit.blockSize
        var owners: [AlignedCopy] = []
        let packed = try typed(name, .u8, shape: [(count + 1) / 2, 1], as: UInt8.self, owners: &owners)
        let codeValues = try finite(typed(name + ".quant_map", .f32, shape: [16], as: Float.self, owners: &owners), name + ".quant_map")
        let absmax: Quantized4Bit.Absmax
        if let offset = state.nestedOffset {
            let nested = try finite(typed(name + ".nested_absmax", .f32,
                                          shape: [(blocks + Quantized4Bit.nestedBlockSize - 1) / Quantized4Bit.nestedBlockSize],
                                          as: Float.self, owners: &owners), name + ".nested_absmax")
            let map = try finite(typed(name + ".nested_quant_map", .f32, shape: [256], as: Float.self, owners: &owners),
                                 name + ".nested_quant_map")
            absmax = .doubleQuantized(codes: try typed(name + ".absmax", .u8, shape: [blocks], as: UInt8.self, owners: &owners),
                                      absmax: nested, offset: offset, map: map)
        } else {
            for extra in [".nested_absmax", ".nested_quant_map"] where tensor(name + extra) != nil {
                throw stateError(name + extra, "nested state, but the quant_state has no nested_offset (plain scales)")
            }
            absmax = .float32(try finite(typed(name + ".absmax", .f32, shape: [blocks], as: Float.self, owners: &owners),
                                         name + ".absmax"))
        }
        do {
            return try Quantized4Bit(type: type, shape: shape, packed: packed, absmax: absmax, codeValues: Array(codeValues),
                                     owner: OwnerList(self, owners))
        } catch let error as QuantizationError {
            throw stateError(name, error.description)
        }
    }

    /// The fields of a 4-bit `quant_state` JSON (bitsandbytes `QuantState.as_dict(packed=True)`).
    private struct QuantState {
        var shape: [Int]
        /// Double quantization's `nested_offset`; nil for plain scales.
        var nestedOffset: Float?
        var isNested: Bool { nestedOffset != nil }
    }

    private func quantState(_ stateName: String) throws -> QuantState {
        func bad(_ what: String) -> FormatError { stateError(stateName, what) }
        guard let info = tensor(stateName), info.storage == .safetensors(.u8), info.shape.count == 1 else {
            throw bad("must be a 1-D U8 tensor holding the quant state's JSON")
        }
        let json = try JSONValue.parse(try packedData(info), path: "\(filePath(of: stateName)) (tensor '\(stateName)')",
                                       rejectDuplicateKeys: true)
        guard let fields = json.objectValue else { throw bad("the quant state is not a JSON object") }
        let known: Set = ["quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset"]
        if let unknown = fields.map(\.0).first(where: { !known.contains($0) }) {
            throw bad("unknown quant state field '\(unknown)' (a newer bitsandbytes feature?); Finch reads \(known.sorted().joined(separator: ", "))")
        }
        let typeName = stateName.components(separatedBy: "__").last ?? ""
        guard json["quant_type"]?.stringValue == typeName else {
            throw bad("quant_type \(json["quant_type"]?.compactText ?? "missing") does not match the tensor name's \(typeName)")
        }
        guard let blocksize = json["blocksize"]?.intValue else { throw bad("missing integer field 'blocksize'") }
        guard blocksize == Quantized4Bit.blockSize else {
            throw bad("blocksize \(blocksize) is not supported: Finch reads bitsandbytes 4-bit weights with blocksize 64 (the default for weights)")
        }
        guard let dtype = json["dtype"]?.stringValue, ["float32", "bfloat16", "float16"].contains(dtype) else {
            throw bad("dtype \(json["dtype"]?.compactText ?? "missing") is not one of float32, bfloat16, float16")
        }
        guard let dims = json["shape"]?.arrayValue?.compactMap(\.intValue), dims.count == 2, dims.allSatisfy({ $0 >= 0 }),
              json["shape"]?.arrayValue?.count == 2 else {
            throw bad("shape \(json["shape"]?.compactText ?? "missing") is not [out_features, in_features]")
        }
        let nestedKeys = ["nested_blocksize", "nested_dtype", "nested_offset"]
        let present = nestedKeys.filter { json[$0] != nil }
        guard !present.isEmpty else { return QuantState(shape: dims) }
        guard present.count == nestedKeys.count else {
            throw bad("double quantization needs \(nestedKeys.joined(separator: ", ")); only \(present.joined(separator: ", ")) present")
        }
        guard json["nested_blocksize"]?.intValue == Quantized4Bit.nestedBlockSize else {
            throw bad("nested_blocksize \(json["nested_blocksize"]?.compactText ?? "") is not supported (bitsandbytes uses 256)")
        }
        guard json["nested_dtype"]?.stringValue == "float32" else {
            throw bad("nested_dtype \(json["nested_dtype"]?.compactText ?? "") is not float32")
        }
        guard let offset = json["nested_offset"]?.doubleValue, Float(offset).isFinite else {
            throw bad("nested_offset \(json["nested_offset"]?.compactText ?? "") is not a finite number")
        }
        return QuantState(shape: dims, nestedOffset: Float(offset))
    }

    // MARK: - 8-bit

    private func int8Weight(_ name: String, module: String) throws -> Int8RowQuantized {
        guard case .bitsAndBytes8Bit = quantization else {
            throw stateError(module + ".SCB", "bitsandbytes 8-bit state, but config.json's quantization_config does not say load_in_8bit")
        }
        guard let info = tensor(name), info.shape.count == 2 else {
            throw stateError(name, "must be an I8 [out_features, in_features] matrix next to '\(module).SCB'")
        }
        let (rows, columns) = (info.shape[0], info.shape[1])
        if let format = tensor(module + ".weight_format") {
            guard format.storage == .safetensors(.u8), format.elementCount == 1 else {
                throw stateError(format.name, "must be a U8 scalar (0 = row-major)")
            }
            let value = try packedData(format).load(as: UInt8.self)
            guard value == 0 else {
                let names = [1: "col32", 2: "col_turing", 3: "col_ampere"]
                throw stateError(format.name, "format \(value) (\(names[Int(value)] ?? "unknown")) is not supported; Finch reads row-major int8 weights (0)")
            }
        }
        var owners: [AlignedCopy] = []
        let codes = try typed(name, .i8, shape: [rows, columns], as: Int8.self, owners: &owners)
        let absmax = try typed(module + ".SCB", .f32, shape: [rows], as: Float.self, owners: &owners)
        do {
            return try Int8RowQuantized(rows: rows, columns: columns, codes: codes, absmax: absmax, owner: OwnerList(self, owners))
        } catch let error as QuantizationError {
            throw stateError(module + ".SCB", error.description)
        }
    }

    // MARK: - Tensors

    /// Tensor `name`'s elements, checked to be `dtype` of `shape`. Float32 data that the file does
    /// not place on a 4-byte boundary is copied (its owner appended to `owners`).
    private func typed<T>(_ name: String, _ dtype: SafeTensorsDType, shape: [Int], as _: T.Type,
                          owners: inout [AlignedCopy]) throws -> UnsafeBufferPointer<T> {
        guard let info = tensor(name) else {
            throw FormatError(filePath(of: ModelSource.weightName(of: name)), "missing tensor '\(name)' (bitsandbytes state)")
        }
        guard info.storage == .safetensors(dtype), info.shape == shape else {
            throw stateError(name, "is \(info.storage.name) \(info.shape), expected \(dtype.rawValue) \(shape)")
        }
        var raw = try packedData(info)
        if let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<T>.alignment != 0 {
            let copy = AlignedCopy(raw)
            owners.append(copy)
            raw = UnsafeRawBufferPointer(copy.bytes)
        }
        guard let base = raw.baseAddress else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: base.assumingMemoryBound(to: T.self), count: raw.count / MemoryLayout<T>.stride)
    }

    /// An error about bitsandbytes tensor `name`, naming the file that holds it.
    private func stateError(_ name: String, _ what: String) -> FormatError {
        FormatError(filePath(of: name), "tensor '\(name)': \(what)")
    }

    /// The `<module>.weight` a state tensor belongs to.
    private static func weightName(of name: String) -> String {
        for suffix in bitsAndBytesStateSuffixes where name.hasSuffix(suffix) {
            return String(name.dropLast(suffix.count)) + ".weight"
        }
        return name
    }

    private func finite(_ values: UnsafeBufferPointer<Float>, _ name: String) throws -> UnsafeBufferPointer<Float> {
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw stateError(name, "element \(i) is \(values[i]); bitsandbytes scales and maps must be finite")
        }
        return values
    }
}

/// Keeps a model source (its mapped files) and any aligned copies alive for a wrapped weight.
private final class OwnerList: Sendable {
    let source: ModelSource
    let copies: [AlignedCopy]
    init(_ source: ModelSource, _ copies: [AlignedCopy]) {
        self.source = source
        self.copies = copies
    }
}

/// An aligned heap copy of tensor bytes that the file left unaligned (safetensors does not promise
/// alignment; the Python writer happens to place F32 tensors first).
private final class AlignedCopy: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    init(_ source: UnsafeRawBufferPointer) {
        bytes = .allocate(byteCount: max(source.count, 1), alignment: 64)
        bytes.copyMemory(from: source)
    }
    deinit { bytes.deallocate() }
}
