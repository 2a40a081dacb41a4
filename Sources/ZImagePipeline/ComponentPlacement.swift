import ZImageTensor

/// Where a pipeline keeps each component's weights: the memory side of a plan
/// (`ZImagePlanner`'s modes), decided before anything loads.
public struct ComponentPlacement: Sendable, Equatable {
    /// The text encoder's weights.
    public enum TextEncoder: String, Sendable, Equatable {
        /// On the device for the pipeline's life.
        case resident
        /// Loaded for a new prompt, run, freed (the planner's `sequential` mode).
        case sequential
        /// Its layers in host memory, streamed through two device slots (`StreamedLayers`).
        case streamed
    }

    public var textEncoder: TextEncoder
    /// Whether the transformer's image-token blocks stream from host memory (block streaming).
    public var streamsTransformerBlocks: Bool
    /// Whether the text encoder's token-embedding table stays in the file, a prompt's rows
    /// gathered on the host (0.78 GB less on the device; the same numbers).
    public var embeddingOnHost: Bool

    public init(textEncoder: TextEncoder = .resident, streamsTransformerBlocks: Bool = false,
                embeddingOnHost: Bool = true) {
        self.textEncoder = textEncoder
        self.streamsTransformerBlocks = streamsTransformerBlocks
        self.embeddingOnHost = embeddingOnHost
    }

    /// Everything on the device but the embedding table (the default).
    public static let resident = ComponentPlacement()
}
