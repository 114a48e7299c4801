import { describe, expect, it } from 'vitest'
import { checkPlan, spacedTimesteps, vpPlan, vpSchedule } from './schedules.js'

// Expected timestep lists are diffusers' (numpy 1.24, huggingface/diffusers@58eb52c0):
// DDIMScheduler / EulerDiscreteScheduler trailing `np.round(np.arange(1000, 0, -1000 / N)) - 1`, DDIM linspace
// `np.linspace(0, 999, N).round()[::-1]`, DPMSolverMultistepScheduler linspace
// `np.linspace(0, 999, N + 1).round()[::-1][:-1]`.
const sd15 = vpSchedule()

describe('spacedTimesteps rounds as numpy does', () => {
  it('trailing, N = 16: 812.5 rounds half to even (811 after the -1)', () => {
    expect(spacedTimesteps({ trainSteps: 1000, steps: 16, spacing: 'trailing' })).toEqual([999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61])
  })

  it('trailing, N = 7 (the value list DDIM steps through)', () => {
    expect(spacedTimesteps({ trainSteps: 1000, steps: 7, spacing: 'trailing' })).toEqual([999, 856, 713, 570, 428, 285, 142])
  })

  it("rounded linspace, N = 27: numpy's 13 * (999 / 26) is 499.49999999999994, so 499", () => {
    const ts = spacedTimesteps({ trainSteps: 1000, steps: 27, spacing: 'linspace', round: true })
    expect(ts.slice(12, 15)).toEqual([538, 499, 461])
    expect(ts[0]).toBe(999)
    expect(ts[26]).toBe(0)
  })

  it('DPM-Solver linspace, N = 30: 499 and 33, as numpy', () => {
    const ts = spacedTimesteps({ trainSteps: 1000, steps: 30, spacing: 'linspace-exclusive' })
    expect(ts.slice(13, 16)).toEqual([566, 533, 499])
    expect(ts.slice(-2)).toEqual([67, 33])
  })
})

describe("vpPlan({ ddim: true }): diffusers' DDIMScheduler", () => {
  it('trailing, 7 steps: step i lands at abar[t_i - 142], not at the next timestep', () => {
    const plan = vpPlan(sd15, { steps: 7, spacing: 'trailing', ddim: true, final: 'first-train-step' })
    expect([...plan.timesteps]).toEqual([999, 856, 713, 570, 428, 285, 142])
    const landed = [857, 714, 571, 428, 286, 143, 0]
    expect([...(plan.targets ?? [])]).toEqual(landed.map((t) => sd15.sigmas[t]))
    expect(plan.targets?.[0]).toBeGreaterThan(plan.sigmas[1] as number) // 857 is noisier than 856
    expect(plan.targets?.[3]).toBe(plan.sigmas[4]) // 570 - 142 = 428 is the next timestep
    expect(plan.sigmas[7]).toBe(sd15.sigmaMin) // set_alpha_to_one = false: the last step lands at abar[0]
  })

  it('linspace ending at timestep 0: the last step does not move (abar[0] to abar[0]), as in diffusers', () => {
    const plan = vpPlan(sd15, { steps: 7, spacing: 'linspace', ddim: true, final: 'first-train-step' })
    expect([...plan.timesteps]).toEqual([999, 832, 666, 500, 333, 166, 0])
    expect(plan.targets?.[6]).toBe(sd15.sigmaMin)
    expect(plan.sigmas[7]).toBe(plan.sigmas[6])
    expect(vpPlan(sd15, { steps: 7, spacing: 'linspace', ddim: true, final: 'zero' }).sigmas[7]).toBe(0)
  })

  it('leading: every target is the next timestep, the last one final_alpha_cumprod', () => {
    const plan = vpPlan(sd15, { steps: 13, spacing: 'leading', stepsOffset: 1, ddim: true, final: 'zero' })
    expect(plan.timesteps[0]).toBe(913) // 12 * (1000 // 13) + 1
    expect([...(plan.targets ?? [])]).toEqual([...plan.sigmas.slice(1)])
    expect(plan.sigmas[13]).toBe(0)
  })

  it('refuses Karras sigmas', () => {
    expect(() => vpPlan(sd15, { steps: 7, ddim: true, karras: true })).toThrowError(/karras must be false with ddim: true/)
  })
})

describe('checkPlan targets', () => {
  const sigmas = Float64Array.from([10, 5, 1, 0.5])
  const timesteps = Float64Array.from([900, 600, 200])
  const plan = (targets: number[], end = 0.5) => ({ family: 'vp' as const, sigmas: Float64Array.from([...sigmas.slice(0, 3), end]), timesteps, targets: Float64Array.from(targets) })

  it('accepts targets between the next sigma and the current one, and an in-place last step', () => {
    expect(checkPlan(plan([6, 2, 0.5])).targets).toHaveLength(3)
    expect(checkPlan(plan([6, 2, 1], 1)).sigmas[3]).toBe(1)
  })

  it('rejects wrong lengths, targets above their sigma, and a last target that is not the end', () => {
    expect(() => checkPlan(plan([6, 2]))).toThrowError(/plan.targets length must be one per step \(3\)/)
    expect(() => checkPlan(plan([11, 2, 0.5]))).toThrowError(/plan.targets\[0\] must be a finite number in \[0, sigmas\[0\] = 10\]/)
    expect(() => checkPlan(plan([6, Number.NaN, 0.5]))).toThrowError(/plan.targets\[1\]/)
    expect(() => checkPlan(plan([6, 2, 0.4]))).toThrowError(/plan.targets\[2\] must be the last sigma \(0.5\)/)
  })

  it('without targets the end must still be below the last step', () => {
    expect(() => checkPlan({ family: 'vp', sigmas: Float64Array.from([10, 5, 1, 1]), timesteps })).toThrowError(/sigmas must be decreasing/)
  })
})
