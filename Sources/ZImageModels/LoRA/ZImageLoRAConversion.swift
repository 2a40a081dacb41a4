/// One module's update as the file describes it, after conversion to diffusers names.
public enum LoRAFactors: Equatable, Sendable {
    /// ΔW = up · down (`lora_B · lora_A`), alpha/rank already folded in.
    case lowRank(down: HostMatrix, up: HostMatrix)
    /// ΔW = w1 ⊗ w2 (LoKr), each factor already multiplied out, alpha/rank folded into w1.
    case kronecker(w1: HostMatrix, w2: HostMatrix)
}

/// Key conversion of Z-Image LoRA files to diffusers module names, ported line by line from
/// diffusers 0.42.1: `ZImageLoraLoaderMixin.lora_state_dict` (which converter runs),
/// `_convert_non_diffusers_z_image_lora_to_diffusers` (diffusion_model./lora_unet_ prefixes,
/// underscore names with protected n-grams, `.out` → `.to_out.0`, `default.` stripped, module-name
/// fix-ups, down/up → A/B with alpha/rank balanced in powers of two, fused qkv split in thirds,
/// the dot-format `.lora.down.weight`) and `_convert_non_diffusers_lokr_to_diffusers` /
/// `_bake_lokr_alpha_`. As there, any key left over is an error, here naming the key as the file
/// spells it. Where diffusers silently drops keys (`load_lora_adapter` keeps only `transformer.`
/// keys), this port refuses them instead, except that a file whose keys all lack the prefix is
/// read as a transformer LoRA (a bare PEFT state dict, which diffusers would load as nothing).
public enum ZImageLoRAConversion {
    /// A tensor of the file: its current (converted) name maps to the name in the file and its values.
    struct Entry {
        var original: String
        var value: HostMatrix
    }

    /// Converts the tensors of one file (name in the file → values) to module → factors.
    /// `metadata` is the file's `__metadata__` (PEFT's `lora_adapter_metadata` sets alpha and rank).
    public static func convert(_ tensors: [String: HostMatrix], metadata: [String: String] = [:],
                               file: String) throws -> [String: LoRAFactors] {
        var state: [String: Entry] = [:]
        for (key, value) in tensors { state[key] = Entry(original: key, value: value) }
        // DoRA magnitudes are dropped by diffusers with a warning; applying the rest would not be the DoRA.
        if let dora = tensors.keys.sorted().first(where: { $0.contains("dora_scale") }) {
            throw LoRAError.unsupported(file: file, detail: "'\(dora)': DoRA LoRAs are not supported")
        }
        let keys = Array(state.keys)
        let hasAlphas = keys.contains { $0.hasSuffix(".alpha") }
        let hasLoraUnet = keys.contains { $0.hasPrefix("lora_unet_") }
        let hasDiffusionModel = keys.contains { $0.hasPrefix("diffusion_model.") }
        let hasDefault = keys.contains { $0.contains("default.") }
        let isLoKr = keys.contains { $0.contains(".lokr_") }
        if isLoKr {
            if hasDiffusionModel || hasAlphas { state = try convertLoKr(state, file: file) }
        } else if hasAlphas || hasLoraUnet || hasDiffusionModel || hasDefault {
            state = try convertNonDiffusers(state, file: file)
        }
        return try modules(of: state, metadata: metadata, file: file)
    }

    // MARK: The two converters

    static func rename(_ state: [String: Entry], _ transform: (String) -> String) -> [String: Entry] {
        var out: [String: Entry] = [:]
        for (key, entry) in state { out[transform(key)] = entry }
        return out
    }

    static func removingPrefix(_ prefix: String, _ key: String) -> String {
        key.hasPrefix(prefix) ? String(key.dropFirst(prefix.count)) : key
    }

    /// `_convert_non_diffusers_lokr_to_diffusers`.
    static func convertLoKr(_ input: [String: Entry], file: String) throws -> [String: Entry] {
        var state = rename(input) { removingPrefix("diffusion_model.", $0) }
        // _bake_lokr_alpha_: alpha/rank into the left factor when a factor is rank-decomposed.
        for alphaKey in state.keys.filter({ $0.hasSuffix(".alpha") }).sorted() {
            guard let alphaEntry = state.removeValue(forKey: alphaKey) else { continue }
            let alpha = try scalar(alphaEntry, file: file)
            let module = String(alphaKey.dropLast(".alpha".count))
            let w2b = state["\(module).lokr_w2_b"], w1b = state["\(module).lokr_w1_b"]
            guard let rank = (w2b ?? w1b)?.value.rows else { continue }
            let w1Key = state["\(module).lokr_w1"] != nil ? "\(module).lokr_w1" : "\(module).lokr_w1_a"
            guard var w1 = state[w1Key] else {
                throw LoRAError.missingPartner(file: file, key: alphaEntry.original, partner: w1Key)
            }
            w1.value = w1.value.scaled(Float(alpha / Double(rank)))
            state[w1Key] = w1
        }
        let stray = state.filter { !$0.key.contains(".lokr_") }.map(\.value.original).sorted()
        guard stray.isEmpty else { throw LoRAError.unknownKeys(file: file, keys: stray) }
        return rename(state) { "transformer." + $0 }
    }

    /// `_convert_non_diffusers_z_image_lora_to_diffusers`.
    static func convertNonDiffusers(_ input: [String: Entry], file: String) throws -> [String: Entry] {
        var state = input
        if state.keys.contains(where: { $0.hasPrefix("diffusion_model.") }) {
            state = rename(state) { removingPrefix("diffusion_model.", $0) }
        }
        if state.keys.contains(where: { $0.hasPrefix("lora_unet_") }) {
            state = rename(state) { underscoreKey(removingPrefix("lora_unet_", $0)) }
        }
        state = rename(state, normalizeOutKey)
        if state.keys.contains(where: { $0.contains("default.") }) {
            state = rename(state) { $0.replacingOccurrences(of: "default.", with: "") }
        }
        state = rename(state, fixupModuleNames)

        var converted: [String: Entry] = [:]
        let allKeys = state.keys.sorted()
        let (down, up, a, b) = (".lora_down.weight", ".lora_up.weight", ".lora_A.weight", ".lora_B.weight")
        let hasNonDiffusers = allKeys.contains { $0.contains(down) || $0.contains(up) }
        let hasDiffusers = allKeys.contains { $0.contains(a) || $0.contains(b) }

        func pop(_ key: String, partnerOf other: Entry) throws -> Entry {
            guard let entry = state.removeValue(forKey: key) else {
                throw LoRAError.missingPartner(file: file, key: other.original, partner: key)
            }
            return entry
        }
        func store(_ key: String, _ entry: Entry, _ factor: Float) {
            converted[key] = Entry(original: entry.original, value: entry.value.scaled(factor))
        }
        if hasNonDiffusers {
            for k in allKeys where k.hasSuffix(down) {
                guard let downEntry = state.removeValue(forKey: k) else { continue }
                let upEntry = try pop(k.replacingOccurrences(of: down, with: up), partnerOf: downEntry)
                let (sd, su) = try alphaScales(downEntry.value, k.replacingOccurrences(of: down, with: ".alpha"),
                                               &state, file: file)
                store(k.replacingOccurrences(of: down, with: a), downEntry, sd)
                store(k.replacingOccurrences(of: down, with: up).replacingOccurrences(of: up, with: b), upEntry, su)
            }
        } else if hasDiffusers {
            for k in allKeys where k.hasSuffix(a) {
                guard let downEntry = state.removeValue(forKey: k) else { continue }
                let upKey = k.replacingOccurrences(of: a, with: b)
                let upEntry = try pop(upKey, partnerOf: downEntry)
                let (sd, su) = try alphaScales(downEntry.value, k.replacingOccurrences(of: a, with: ".alpha"),
                                               &state, file: file)
                store(k, downEntry, sd)
                store(upKey, upEntry, su)
            }
        }

        // The dot format (".lora.down.weight"): kohya keys after underscoreKey, Anime-Z, fused qkv.
        let (dotDown, dotUp) = (".lora.down.weight", ".lora.up.weight")
        if state.keys.contains(where: { $0.contains(dotDown) }) {
            let dotKeys = state.keys.sorted()
            let dotKeySet = Set(dotKeys)
            for k in dotKeys where k.contains(dotDown) {
                guard let downEntry = state.removeValue(forKey: k) else { continue }
                let base = String(k.dropLast(dotDown.count))
                let upKey = k.replacingOccurrences(of: dotDown, with: dotUp)
                if base.hasSuffix(".qkv") {
                    let block = String(base.dropLast(".qkv".count))
                    let upEntry = state.removeValue(forKey: upKey)
                    let hasSplitKeys = ["q", "k", "v"].contains { proj in
                        ["to.\(proj)", "to_\(proj)"].contains { dotKeySet.contains("\(block).\($0)\(dotDown)") }
                    }
                    guard let upEntry, !hasSplitKeys else {
                        state.removeValue(forKey: base + ".alpha")
                        continue
                    }
                    guard upEntry.value.rows % 3 == 0 else {
                        throw LoRAError.malformedTensor(file: file, key: upEntry.original,
                                                        detail: "has \(upEntry.value.rows) rows, not three equal parts")
                    }
                    let (sd, su) = try alphaScales(downEntry.value, base + ".alpha", &state, file: file)
                    let third = upEntry.value.rows / 3
                    for (index, proj) in ["q", "k", "v"].enumerated() {
                        store("\(block).to_\(proj).lora_A.weight", downEntry, sd)
                        let chunk = Entry(original: upEntry.original,
                                          value: upEntry.value.rowSlice((index * third)..<((index + 1) * third)))
                        store("\(block).to_\(proj).lora_B.weight", chunk, su)
                    }
                    continue
                }
                if base.hasSuffix(".out"), !base.contains(".to_out") {
                    let block = String(base.dropLast(".out".count))
                    let upEntry = state.removeValue(forKey: upKey)
                    guard let upEntry, !dotKeySet.contains("\(block).to_out.0\(dotDown)") else { continue }
                    let (sd, su) = try alphaScales(downEntry.value, "\(block).to_out.0.alpha", &state, file: file)
                    store("\(block).to_out.0.lora_A.weight", downEntry, sd)
                    store("\(block).to_out.0.lora_B.weight", upEntry, su)
                    continue
                }
                // ".to.q/k/v" → ".to_q/k/v" for the diffusers key.
                var normalized = k
                for proj in ["q", "k", "v"] where k.hasSuffix(".to.\(proj)\(dotDown)") {
                    normalized = String(k.dropLast(".to.\(proj)\(dotDown)".count)) + ".to_\(proj)\(dotDown)"
                }
                let normalizedBase = String(normalized.dropLast(dotDown.count))
                let upEntry = try pop(upKey, partnerOf: downEntry)
                let (sd, su) = try alphaScales(downEntry.value, normalizedBase + ".alpha", &state, file: file)
                store(normalizedBase + ".lora_A.weight", downEntry, sd)
                store(normalizedBase + ".lora_B.weight", upEntry, su)
            }
        }
        guard state.isEmpty else { throw LoRAError.unknownKeys(file: file, keys: state.values.map(\.original).sorted()) }
        return rename(converted) { "transformer." + $0 }
    }

    // MARK: Pieces of the converter

    /// `get_alpha_scales`: alpha/rank split between down and up so that neither loses range.
    static func alphaScales(_ down: HostMatrix, _ alphaKey: String, _ state: inout [String: Entry],
                            file: String) throws -> (Float, Float) {
        guard let alphaEntry = state.removeValue(forKey: alphaKey) else { return (1, 1) }
        let scale = try scalar(alphaEntry, file: file) / Double(down.rows)
        var (scaleDown, scaleUp) = (scale, 1.0)
        while scaleDown * 2 < scaleUp {
            scaleDown *= 2
            scaleUp /= 2
        }
        return (Float(scaleDown), Float(scaleUp))
    }

    static func scalar(_ entry: Entry, file: String) throws -> Double {
        guard entry.value.values.count == 1, entry.value.values[0].isFinite else {
            throw LoRAError.malformedTensor(file: file, key: entry.original, detail: "is not one finite number")
        }
        return Double(entry.value.values[0])
    }

    /// `convert_key`: underscores become dots, except inside the protected n-grams to_q, to_k,
    /// to_v, to_out and feed_forward. Only the part before the last dot is split.
    public static func underscoreKey(_ key: String) -> String {
        let base: Substring, suffix: Substring
        if let dot = key.lastIndex(of: ".") {
            (base, suffix) = (key[..<dot], key[key.index(after: dot)...])
        } else {
            (base, suffix) = (key[...], "")
        }
        let protected: Set<[Substring]> = [["to", "q"], ["to", "k"], ["to", "v"], ["to", "out"], ["feed", "forward"]]
        let parts = base.split(separator: "_", omittingEmptySubsequences: false)
        var merged: [String] = []
        var i = 0
        while i < parts.count {
            if i + 2 <= parts.count, protected.contains(Array(parts[i..<(i + 2)])) {
                merged.append(parts[i..<(i + 2)].joined(separator: "_"))
                i += 2
            } else {
                merged.append(String(parts[i]))
                i += 1
            }
        }
        return merged.joined(separator: ".") + (suffix.isEmpty ? "" : "." + suffix)
    }

    /// `normalize_out_key`: a bare `.out` before `.lora_down.weight`, `.lora_up.weight` or `.alpha`
    /// at the end becomes `.to_out.0`.
    public static func normalizeOutKey(_ key: String) -> String {
        guard !key.contains(".to_out") else { return key }
        for tail in [".lora_down.weight", ".lora_up.weight", ".alpha"] where key.hasSuffix(".out" + tail) {
            return String(key.dropLast((".out" + tail).count)) + ".to_out.0" + tail
        }
        return key
    }

    /// `zimage_module_name_fixups`: module names with underscores of their own, over-split above.
    public static func fixupModuleNames(_ key: String) -> String {
        var key = key
        for (dotted, underscored) in [("context.refiner.", "context_refiner."), ("noise.refiner.", "noise_refiner."),
                                      ("adaLN.modulation.", "adaLN_modulation."),
                                      ("all.final.layer.", "all_final_layer."), ("all.x.embedder.", "all_x_embedder."),
                                      ("cap.embedder.", "cap_embedder."), ("t.embedder.", "t_embedder.")] {
            key = key.replacingOccurrences(of: dotted, with: underscored)
        }
        return key
    }
}
