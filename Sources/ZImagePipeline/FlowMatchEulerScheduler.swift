/// The FlowMatch Euler schedule Z-Image-Turbo uses (diffusers 0.42.1
/// `FlowMatchEulerDiscreteScheduler` with static shift 3 and the pipeline's default sigmas).
/// All arithmetic is float32 in the reference's order.
public struct FlowMatchEulerScheduler: Sendable, Equatable {
    /// σ for each step plus a final 0 (`steps + 1` values).
    public let sigmas: [Float]
    /// The scheduler's timesteps, σ·1000 (`steps` values).
    public let timesteps: [Float]

    /// - Parameters:
    ///   - steps: number of model evaluations (Turbo: 8).
    ///   - shift: the scheduler config's `shift` (3.0).
    ///   - trainTimesteps: `num_train_timesteps` (1000).
    public init(steps: Int, shift: Float = 3, trainTimesteps: Float = 1000) {
        precondition(steps >= 1, "at least one step")
        // torch.linspace(1.0, 1/N, N) in float32: step = (end - start)/(N - 1); the first half counts
        // up from start, the second half down from end (ATen's linspace kernel).
        let start: Float = 1, end = Float(1.0 / Double(steps))
        let step = steps > 1 ? (end - start) / Float(steps - 1) : 0
        let base: [Float] = (0..<steps).map { index in
            index < steps / 2 ? start + step * Float(index) : end - step * Float(steps - index - 1)
        }
        // Static shift in float32 (numpy): shift·σ / (1 + (shift − 1)·σ).
        let shifted = base.map { sigma in shift * sigma / (1 + (shift - 1) * sigma) }
        sigmas = shifted + [0]
        timesteps = shifted.map { $0 * trainTimesteps }
    }

    /// Number of model evaluations.
    public var steps: Int { timesteps.count }

    /// The `t` the transformer receives at step `index`: (1000 − timestep)/1000, float32.
    public func modelTime(_ index: Int) -> Float { (1000 - timesteps[index]) / 1000 }

    /// σ_{i+1} − σ_i, the Euler step size (negative).
    public func stepSize(_ index: Int) -> Float { sigmas[index + 1] - sigmas[index] }
}
