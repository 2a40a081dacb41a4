import ZImageTensor

extension WeightSet {
    /// The same tensors (same mapped files, nothing copied) under other names: `rename` gives each
    /// key's new name, or nil to leave the tensor out. Two keys given one name is an error naming both.
    public func renamingKeys(_ rename: (String) -> String?) throws -> WeightSet {
        try remapping { key, info in rename(key).map { [($0, info)] } ?? [] }
    }

    /// Views of these tensors (nothing copied): `transform` turns each entry into zero or more
    /// entries, renamed, cut into row blocks (`TensorInfo.rows`) or given another shape of the same
    /// size (`TensorInfo.reshaped`). Two entries given one name is an error naming both sources.
    public func remapping(_ transform: (String, TensorInfo) throws -> [(String, TensorInfo)]) throws -> WeightSet {
        var renamedFiles: [String: SafetensorsFile] = [:]
        var renamedEntries: [String: TensorInfo] = [:]
        var origin: [String: String] = [:]
        for key in keys {
            guard let file = files[key], let info = entries[key] else { continue }
            for (name, var view) in try transform(key, info) {
                if let first = origin[name] {
                    throw WeightLoadingError.duplicateKey(key: name, first: "'\(first)'", second: "'\(key)'")
                }
                origin[name] = key
                view.name = name
                renamedFiles[name] = file
                renamedEntries[name] = view
            }
        }
        return WeightSet(files: renamedFiles, entries: renamedEntries, shards: shards)
    }
}

extension TensorInfo {
    /// Part `index` of `count` equal row blocks along the first axis (a fused q/k/v projection cut
    /// into q, k and v): a view of contiguous bytes. Nil when the rows do not divide evenly.
    public func rows(part index: Int, of count: Int) -> TensorInfo? {
        guard count > 0, (0..<count).contains(index), let first = shape.dims.first, first % count == 0 else { return nil }
        let rowsPerPart = first / count
        var dims = shape.dims
        dims[0] = rowsPerPart
        let bytesPerPart = byteCount / count
        let start = dataOffsets.lowerBound + index * bytesPerPart
        var view = self
        view.shape = Shape(dims)
        view.dataOffsets = start..<(start + bytesPerPart)
        if case .scaledFloat8(let scales) = encoding, scales.count > 1 {   // per-row scales go with their rows
            guard scales.count == first else { return nil }
            view.encoding = .scaledFloat8(scales: Array(scales[(index * rowsPerPart)..<((index + 1) * rowsPerPart)]))
        }
        return view
    }

    /// The same bytes under another shape with as many elements (a 1×1 convolution kernel
    /// `[out, in, 1, 1]` read as a linear weight `[out, in]`). Nil when the counts differ.
    public func reshaped(_ newShape: Shape) -> TensorInfo? {
        guard newShape.count == shape.count else { return nil }
        if case .scaledFloat8(let scales) = encoding, scales.count > 1,
           newShape.dims.first != shape.dims.first { return nil }   // per-row scales need the rows kept
        if encoding == .ggmlQ8_0, newShape.dims.last != shape.dims.last { return nil }   // blocks run along the last axis
        var view = self
        view.shape = newShape
        return view
    }
}
