import Foundation

extension ZImageLoRAConversion {
    static let lokrSuffixes = ["lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b"]

    /// Groups converted keys (`transformer.<module>.lora_A.weight`, `….lokr_w1`, …) into modules,
    /// checks the factors fit each other and applies PEFT's metadata scaling (alpha/r) when present.
    static func modules(of state: [String: Entry], metadata: [String: String],
                        file: String) throws -> [String: LoRAFactors] {
        guard !state.isEmpty else { throw LoRAError.empty(file: file) }
        let prefixed = state.keys.contains { $0.hasPrefix("transformer.") }
        var parts: [String: [String: Entry]] = [:]
        var unknown: [String] = []
        for (key, entry) in state {
            var name = key
            if prefixed {
                guard name.hasPrefix("transformer.") else { unknown.append(entry.original); continue }
                name = String(name.dropFirst("transformer.".count))
            }
            if name.hasSuffix(".lora_A.weight") || name.hasSuffix(".lora_B.weight") {
                let module = String(name.dropLast(".lora_A.weight".count))
                parts[module, default: [:]][String(name.suffix("lora_A.weight".count).prefix(6))] = entry
            } else if let suffix = lokrSuffixes.first(where: { name.hasSuffix("." + $0) }) {
                parts[String(name.dropLast(suffix.count + 1)), default: [:]][suffix] = entry
            } else {
                unknown.append(entry.original)
            }
        }
        guard unknown.isEmpty else { throw LoRAError.unknownKeys(file: file, keys: unknown.sorted()) }
        let config = try PEFTMetadata(metadata, file: file)
        var modules: [String: LoRAFactors] = [:]
        for (module, pieces) in parts {
            if let down = pieces["lora_A"] ?? pieces["lora_B"], pieces["lora_A"] == nil || pieces["lora_B"] == nil {
                throw LoRAError.missingPartner(file: file, key: down.original,
                                               partner: pieces["lora_A"] == nil ? "lora_A" : "lora_B")
            }
            if let down = pieces["lora_A"], let up = pieces["lora_B"] {
                guard down.value.shape.count >= 2, up.value.shape.count >= 2, up.value.columns == down.value.rows,
                      down.value.rows > 0 else {
                    throw LoRAError.malformedTensor(
                        file: file, key: up.original,
                        detail: "has shape \(up.value.shape), which does not fit its down matrix \(down.value.shape)")
                }
                let scale = config?.scale(module: module, rank: down.value.rows) ?? 1
                modules[module] = .lowRank(down: down.value.scaled(scale), up: up.value)
                continue
            }
            let w1 = try factor(pieces, "lokr_w1", file: file), w2 = try factor(pieces, "lokr_w2", file: file)
            let rank = pieces["lokr_w2_a"]?.value.columns ?? pieces["lokr_w1_a"]?.value.columns ?? 0
            let scale = config?.scale(module: module, rank: rank) ?? 1
            modules[module] = .kronecker(w1: w1.scaled(scale), w2: w2)
        }
        return modules
    }

    /// A LoKr factor: stored whole (`lokr_w1`) or as a product (`lokr_w1_a · lokr_w1_b`).
    static func factor(_ pieces: [String: Entry], _ name: String, file: String) throws -> HostMatrix {
        if let whole = pieces[name] { return whole.value }
        guard let a = pieces[name + "_a"], let b = pieces[name + "_b"] else {
            let present = pieces.values.map(\.original).sorted().first ?? name
            throw LoRAError.missingPartner(file: file, key: present, partner: name)
        }
        guard a.value.shape.count == 2, b.value.shape.count == 2, a.value.columns == b.value.rows else {
            throw LoRAError.malformedTensor(file: file, key: b.original,
                                            detail: "has shape \(b.value.shape), which does not fit \(a.value.shape)")
        }
        return a.value.multiplied(by: b.value)
    }
}

/// The scaling part of a PEFT adapter config stored in a file's `lora_adapter_metadata` (what
/// diffusers passes to `LoraConfig(**metadata)`): `lora_alpha` / `alpha` over `r`, per-module
/// `alpha_pattern`, `use_rslora` (alpha/√r). Keys may carry the `transformer.` prefix.
struct PEFTMetadata {
    var alpha: Double?
    var alphaPattern: [String: Double]
    var rsLoRA: Bool

    init?(_ metadata: [String: String], file: String) throws {
        guard let text = metadata["lora_adapter_metadata"] else { return nil }
        guard let data = text.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw LoRAError.unsupported(file: file, detail: "lora_adapter_metadata is not a JSON object")
        }
        var config: [String: Any] = [:]
        for (key, value) in object { config[ZImageLoRAConversion.removingPrefix("transformer.", key)] = value }
        if config["use_dora"] as? Bool == true {
            throw LoRAError.unsupported(file: file, detail: "DoRA LoRAs are not supported")
        }
        alpha = (config["lora_alpha"] as? NSNumber ?? config["alpha"] as? NSNumber)?.doubleValue
        alphaPattern = ((config["alpha_pattern"] as? [String: Any]) ?? [:]).compactMapValues {
            ($0 as? NSNumber)?.doubleValue
        }
        rsLoRA = config["use_rslora"] as? Bool ?? false
    }

    /// alpha/r for `module` (1 when the config names no alpha: diffusers then sets alpha = r).
    func scale(module: String, rank: Int) -> Float {
        let pattern = alphaPattern.first { key, _ in
            let name = key.hasPrefix("^") ? String(key.dropFirst()) : key
            return module == name || module.hasSuffix("." + name)
        }
        guard let alpha = pattern?.value ?? alpha, rank > 0 else { return 1 }
        return Float(alpha / (rsLoRA ? Double(rank).squareRoot() : Double(rank)))
    }
}
