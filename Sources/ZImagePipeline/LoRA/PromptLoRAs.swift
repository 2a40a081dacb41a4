/// A1111's extra-network tags in a prompt: `<lora:name>`, `<lora:name:0.8>`,
/// `<lora:name:te:unet>` (the second number is the model's strength, which is what Z-Image has),
/// `unet=` / `te=` named, and `<lyco:…>` alike (A1111 `extra_networks.parse_prompt`).
public enum PromptLoRAs {
    /// The prompt with every lora/lyco tag removed, and the LoRAs the tags ask for, in order.
    /// A tag whose strength is not a number is an error naming it.
    public static func parse(_ text: String) -> (prompt: String, loras: [LoRAReference], invalid: [String]) {
        var prompt = "", loras: [LoRAReference] = [], invalid: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "<") {
            prompt += rest[..<open]
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: ">"), let colon = after[..<close].firstIndex(of: ":") else {
                prompt += "<"
                rest = after
                continue
            }
            let kind = after[..<colon], body = after[after.index(after: colon)..<close]
            guard kind == "lora" || kind == "lyco", !body.isEmpty else {
                prompt += rest[open...close]
                rest = after[after.index(after: close)...]
                continue
            }
            let tag = String(rest[open...close])
            var positional: [Substring] = [], named: [Substring: Substring] = [:]
            for (index, part) in body.split(separator: ":", omittingEmptySubsequences: false).enumerated() {
                if index > 0, let equals = part.firstIndex(of: "=") {
                    named[part[..<equals]] = part[part.index(after: equals)...]
                } else {
                    positional.append(part)
                }
            }
            let name = String(positional[0])
            let te = positional.count > 1 ? positional[1] : named["te"]
            let unet = named["unet"] ?? (positional.count > 2 ? positional[2] : te)
            if let unet, Float(unet) == nil || name.isEmpty {
                invalid.append(tag)
            } else if name.isEmpty {
                invalid.append(tag)
            } else {
                loras.append(LoRAReference(name: name, strength: unet.flatMap { Float($0) } ?? 1))
            }
            rest = after[after.index(after: close)...]
        }
        prompt += rest
        return (prompt, loras, invalid)
    }
}
