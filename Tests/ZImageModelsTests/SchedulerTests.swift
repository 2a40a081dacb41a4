import Testing
import ZImageCPU
import ZImagePipeline
import ZImageTensor
import ZImageWeights
import ZImageTestSupport

/// Sigmas, timesteps and model times bit-exact with diffusers 0.42.1 (stages/scheduler.safetensors).
@Suite struct SchedulerTests {
    @Test(arguments: [8, 9, 4])
    func scheduleMatchesDiffusers(steps: Int) throws {
        let file = try SafetensorsFile(path: Fixtures.path("stages/scheduler.safetensors"))
        let backend = CPUBackend()
        let scheduler = FlowMatchEulerScheduler(steps: steps)
        #expect(scheduler.sigmas == (try file.tensor("n\(steps).sigmas", on: backend).toFloats()))
        #expect(scheduler.timesteps == (try file.tensor("n\(steps).timesteps", on: backend).toFloats()))
        let modelTimes = (0..<steps).map(scheduler.modelTime)
        #expect(modelTimes == (try file.tensor("n\(steps).model_t", on: backend).toFloats()))
    }

    @Test func turboScheduleIsTheSpecTable() {
        let scheduler = FlowMatchEulerScheduler(steps: 8)
        #expect(scheduler.sigmas.prefix(3) == [1, 0.954545438, 0.899999976])
        #expect(scheduler.sigmas.last == 0)
        #expect(scheduler.stepSize(7) == -0.300000012)
    }
}
