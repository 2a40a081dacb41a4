import ZImageTensor
import ZImageWeights

/// Single-file checkpoints in the layouts ComfyUI and BFL use, read as diffusers-named views of the
/// same mapped bytes (nothing copied): the key maps of diffusers 0.42.1's
/// `convert_z_image_transformer_checkpoint_to_diffusers` and `convert_ldm_vae_checkpoint`.
public enum SingleFileLayout {
    /// ComfyUI's Lumina2/NextDiT names for the Z-Image transformer → diffusers names. The rules
    /// are the reference's, in its order: `final_layer.` → `all_final_layer.2-1.`, `x_embedder.` →
    /// `all_x_embedder.2-1.`, `attention.out` → `attention.to_out.0`, `q_norm/k_norm` →
    /// `norm_q/norm_k`, the `model.diffusion_model.` prefix dropped; then the fused
    /// `attention.qkv.weight` is cut into q, k and v (rows, in that order) and a stray
    /// `norm_final.weight` is dropped.
    public static func comfyTransformer(_ weights: WeightSet) throws -> WeightSet {
        let rules: [(String, String)] = [
            ("final_layer.", "all_final_layer.2-1."), ("x_embedder.", "all_x_embedder.2-1."),
            (".attention.out.bias", ".attention.to_out.0.bias"), (".attention.k_norm.weight", ".attention.norm_k.weight"),
            (".attention.q_norm.weight", ".attention.norm_q.weight"),
            (".attention.out.weight", ".attention.to_out.0.weight"), ("model.diffusion_model.", ""),
        ]
        return try weights.remapping { key, info in
            var name = key
            for (old, new) in rules { name = name.replacingOccurrences(of: old, with: new) }
            if name == "norm_final.weight" { return [] }
            guard name.hasSuffix(".attention.qkv.weight") else { return [(name, info)] }
            let stem = String(name.dropLast("qkv.weight".count))
            return try ["to_q", "to_k", "to_v"].enumerated().map { index, part in
                guard let view = info.rows(part: index, of: 3) else {
                    let rows = 3 * ((info.shape.dims.first ?? 0) / 3)
                    throw WeightLoadingError.shapeMismatch(component: "transformer", key: key,
                                                           expected: Shape([rows] + info.shape.dims.dropFirst()),
                                                           found: info.shape)
                }
                return (stem + part + ".weight", view)
            }
        }
    }

    /// Whether the keys are ComfyUI's transformer naming (fused qkv), with or without the prefix.
    public static func isComfyTransformer(_ weights: WeightSet) -> Bool {
        weights.entries.keys.contains { $0.hasSuffix("layers.0.attention.qkv.weight") }
            && weights.entries.keys.contains { $0.hasSuffix("cap_embedder.1.weight") }
    }

    /// BFL's (Flux `ae.safetensors`, LDM) VAE names → diffusers `AutoencoderKL` names, decoder side
    /// (the encoder is never loaded): `decoder.up.{n−1−i}` ↔ `up_blocks.{i}`, `block.j` ↔
    /// `resnets.j`, `upsample` ↔ `upsamplers.0`, `mid.block_{1,2}` ↔ `mid_block.resnets.{0,1}`,
    /// `mid.attn_1.{norm,q,k,v,proj_out}` ↔ `attentions.0.{group_norm,to_q,to_k,to_v,to_out.0}` (the
    /// 1×1 convolution kernels read as linear weights), `nin_shortcut` ↔ `conv_shortcut`,
    /// `norm_out` ↔ `conv_norm_out`.
    public static func bflAutoencoder(_ weights: WeightSet) throws -> WeightSet {
        // Whole-model checkpoints carry the VAE under one of the reference's LDM_VAE_KEYS prefixes.
        let prefix = ["vae.", "first_stage_model."].last { p in weights.entries.keys.contains { $0.hasPrefix(p) } }
        let weights = try prefix.map { p in
            try weights.renamingKeys { $0.hasPrefix(p) ? String($0.dropFirst(p.count)) : nil }
        } ?? weights
        let upIndices = Set(weights.entries.keys.compactMap { key -> Int? in
            guard key.hasPrefix("decoder.up.") else { return nil }
            return Int(key.dropFirst("decoder.up.".count).prefix { $0 != "." })
        })
        let upCount = (upIndices.max() ?? -1) + 1
        return try weights.remapping { key, info in
            guard key.hasPrefix("decoder.") else { return [(key, info)] }
            var parts = key.split(separator: ".").map(String.init)
            if parts.count > 2, parts[1] == "up", let k = Int(parts[2]) {
                parts[1] = "up_blocks"
                parts[2] = String(upCount - 1 - k)
                if parts.count > 3, parts[3] == "block" { parts[3] = "resnets" }
                if parts.count > 3, parts[3] == "upsample" { parts.replaceSubrange(3...3, with: ["upsamplers", "0"]) }
            } else if parts.count > 2, parts[1] == "mid" {
                switch parts[2] {
                case "block_1": parts.replaceSubrange(1...2, with: ["mid_block", "resnets", "0"])
                case "block_2": parts.replaceSubrange(1...2, with: ["mid_block", "resnets", "1"])
                case "attn_1":
                    let map = ["norm": ["group_norm"], "q": ["to_q"], "k": ["to_k"], "v": ["to_v"], "proj_out": ["to_out", "0"]]
                    guard parts.count == 5, let renamed = map[parts[3]] else { return [(key, info)] }
                    parts.replaceSubrange(1...3, with: ["mid_block", "attentions", "0"] + renamed)
                default: break
                }
            } else if parts.count > 1, parts[1] == "norm_out" {
                parts[1] = "conv_norm_out"
            }
            parts = parts.map { $0 == "nin_shortcut" ? "conv_shortcut" : $0 }
            let name = parts.joined(separator: ".")
            let isAttentionKernel = name.contains(".attentions.0.to_") && name.hasSuffix(".weight") && info.shape.rank == 4
            if isAttentionKernel, let view = info.reshaped([info.shape[0], info.shape[1]]) {
                return [(name, view)]
            }
            return [(name, info)]
        }
    }

    /// Whether the keys are BFL's VAE naming.
    public static func isBFLAutoencoder(_ weights: WeightSet) -> Bool {
        weights.entries.keys.contains { $0.hasSuffix("decoder.mid.block_1.norm1.weight") }
    }
}
