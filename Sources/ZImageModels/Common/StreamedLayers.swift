import ZImageTensor
import ZImageWeights

/// Layers of one shape kept in host memory and brought onto the device two at a time (block
/// streaming): each layer's tensors (in the form it computes with: bf16, FP8 rows and scales)
/// lie in one host buffer, pinned on a GPU; two device *slots*, each a layer built once, take
/// turns. `layer(i)` returns the slot holding layer i, waiting (on the device, not the host) for
/// its copies, and queues the copies of the next layer into the other slot, so they run while
/// layer i computes. The order wraps (after the last layer the first is fetched again), so a
/// denoising loop that runs the layers every step keeps the copies ahead of the compute.
///
/// The device holds the two slots only; every other layer's memory is host memory. Loading builds
/// each layer on the device the usual way (uploaded, converted, quantised), copies its tensors
/// to the host and lets it go, so every format streams without a host-side version of it.
final class StreamedLayers<Layer> {
    /// Number of layers.
    let count: Int
    private let backend: any WeightStreaming
    private var slots: [Slot]
    /// Each layer's host copy, and the byte offset of each of its tensors in it.
    private let images: [(buffer: HostWeightBuffer, offsets: [Int])]
    private var current = 0
    /// Every layer's tensors' shapes and types, in recorded order (to make slots again).
    private let layout: [(shape: Shape, dtype: DType)]
    /// Builds a layer over given tensors (`LoadedParameters(replaying:)`): slots made again.
    private let rebuild: (LoadedParameters) throws -> Layer
    private let component: String

    private struct Slot {
        let layer: Layer
        let tensors: [Tensor]
        let fence: CopyFence
        /// The layer whose weights the slot holds (or is receiving).
        var holds: Int
        /// Whether copies were queued into it since the fence was made.
        var copied = false
    }

    /// Builds `count` layers with `build(i, source)` (each asks `source` for its parameters, read by
    /// `fetch`), keeps layers 0 and 1 on the device as the slots and every layer's tensors on the
    /// host. Throws when a layer's tensors differ in number or size from the slots' (layers that
    /// stream together must have one shape).
    init(count: Int, backend: any Backend, component: String, fetch: @escaping (String) throws -> Tensor,
         build: @escaping (Int, LoadedParameters) throws -> Layer) throws {
        guard let streaming = backend as? any WeightStreaming else {
            throw TensorError.invalidArgument(op: "block streaming", detail: "\(backend.device) cannot stream weights")
        }
        guard count > 0 else { throw TensorError.invalidArgument(op: "block streaming", detail: "no layers") }
        self.count = count
        self.backend = streaming
        // The slots own their memory (a borrowed, memory-mapped tensor is copied), as they are written.
        let owned: (String) throws -> Tensor = { key in
            let tensor = try fetch(key)
            guard tensor.storage.isBorrowed, let source = UnsafeRawPointer(bitPattern: tensor.address) else { return tensor }
            let copy = try streaming.allocate(shape: tensor.shape, dtype: tensor.dtype)
            try streaming.queueCopies([(source, copy)], signalling: streaming.makeCopyFence())
            return copy
        }
        var slots: [Slot] = []
        for index in 0..<min(2, count) {
            let recorder = TensorRecorder()
            let layer = try build(index, LoadedParameters(component: component, recorder: recorder, fetch: owned))
            slots.append(Slot(layer: layer, tensors: recorder.tensors, fence: try streaming.makeCopyFence(), holds: index))
        }
        let layout = slots[0].tensors.map(\.byteCount)
        self.layout = slots[0].tensors.map { ($0.shape, $0.dtype) }
        self.rebuild = { try build(0, $0) }
        self.component = component
        var images: [(buffer: HostWeightBuffer, offsets: [Int])] = []
        for index in 0..<count {
            let tensors: [Tensor]
            if index < slots.count {
                tensors = slots[index].tensors
            } else {
                let recorder = TensorRecorder()
                _ = try build(index, LoadedParameters(component: component, recorder: recorder, fetch: fetch))
                tensors = recorder.tensors
            }
            guard tensors.map(\.byteCount) == layout else {
                throw TensorError.shapeMismatch(op: "block streaming",
                                                detail: "\(component) layer \(index) differs from layer 0 in its tensors")
            }
            images.append(try Self.hostCopy(of: tensors, on: streaming))
        }
        self.slots = slots
        self.images = images
    }

    /// One host buffer holding `tensors` one after another (each at a 256-byte boundary).
    private static func hostCopy(of tensors: [Tensor], on backend: any WeightStreaming) throws
        -> (buffer: HostWeightBuffer, offsets: [Int]) {
        var offsets: [Int] = [], total = 0
        for tensor in tensors {
            offsets.append(total)
            total += (tensor.byteCount + 255) / 256 * 256
        }
        let buffer = try backend.makeHostWeightBuffer(byteCount: total)
        for (tensor, offset) in zip(tensors, offsets) {
            try backend.download(tensor, into: UnsafeMutableRawBufferPointer(start: buffer.base + offset,
                                                                             count: tensor.byteCount))
        }
        return (buffer, offsets)
    }

    /// Bytes of device memory the slots hold.
    var deviceBytes: Int { slots.reduce(0) { $0 + $1.tensors.reduce(0) { $0 + $1.byteCount } } }

    /// Bytes of host memory the layers' copies hold.
    var hostBytes: Int { images.reduce(0) { $0 + $1.buffer.byteCount } }

    /// Whether the slots' device memory is given back (`releaseSlots`) until the next `layer`.
    var slotsReleased: Bool { slots.isEmpty }

    /// Gives the slots' device memory back (after work queued so far and any copy in flight); the
    /// next `layer` call makes them again and copies its layer in. For layers that run once per
    /// prompt (the text encoder, the caption refiner) between prompts.
    func releaseSlots() throws {
        for slot in slots where slot.copied { try backend.waitForCopies(slot.fence) }
        slots = []
    }

    /// Two slots over fresh device memory, holding nothing yet.
    private func makeSlots() throws {
        for _ in 0..<min(2, count) {
            let tensors = try layout.map { try backend.allocate(shape: $0.shape, dtype: $0.dtype) }
            let layer = try rebuild(LoadedParameters(component: component, replaying: tensors))
            slots.append(Slot(layer: layer, tensors: tensors, fence: try backend.makeCopyFence(), holds: -1))
        }
        current = 0
    }

    /// Layer `index`, on the device for the ops queued next; the next layer's copies are queued.
    func layer(_ index: Int) throws -> Layer {
        guard index >= 0, index < count else {
            throw TensorError.invalidArgument(op: "block streaming", detail: "layer \(index) of \(count)")
        }
        if slots.isEmpty { try makeSlots() }
        if let held = slots.indices.first(where: { slots[$0].holds == index }) {
            current = held
        } else {
            // Not fetched ahead (the first call, or out of order): into the slot not in use.
            current = slots.count > 1 ? 1 - current : 0
            try fill(current, with: index)
        }
        if slots[current].copied { try backend.waitForCopies(slots[current].fence) }
        let next = (index + 1) % count
        if slots.count > 1, !slots.contains(where: { $0.holds == next }) { try fill(1 - current, with: next) }
        return slots[current].layer
    }

    /// Queues the copies of layer `index` into slot `slot` (after the work queued so far, which
    /// includes the slot's previous layer).
    private func fill(_ slot: Int, with index: Int) throws {
        let image = images[index]
        let copies = zip(slots[slot].tensors, image.offsets).map { (UnsafeRawPointer(image.buffer.base + $0.1), $0.0) }
        try backend.queueCopies(copies.map { (source: $0.0, tensor: $0.1) }, signalling: slots[slot].fence)
        slots[slot].holds = index
        slots[slot].copied = true
    }

    deinit {
        // Work queued later (which may reuse the slots' memory) runs after any copy still in flight.
        for slot in slots where slot.copied { try? backend.waitForCopies(slot.fence) }
    }
}
