import { vpPlan } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { parseSchedulerConfig, planFromConfig, scheduleFromConfig } from './scheduler-config.js'

// A diffusers DDIMScheduler config (SD1.5 schedule, trailing spacing, as in scheduler/scheduler_config.json).
const ddimJson = { _class_name: 'DDIMScheduler', beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000, set_alpha_to_one: false, steps_offset: 1, timestep_spacing: 'trailing' }

describe('planFromConfig', () => {
  it("gives a DDIMScheduler config diffusers' DDIM plan: 7 trailing steps land at t - 142", () => {
    const config = parseSchedulerConfig(ddimJson)
    const schedule = scheduleFromConfig(config)
    const plan = planFromConfig(config, schedule, { steps: 7 })
    expect([...plan.timesteps]).toEqual([999, 856, 713, 570, 428, 285, 142])
    expect(plan.targets?.[0]).toBe(schedule.sigmas[857])
    expect(plan.sigmas[7]).toBe(schedule.sigmaMin) // 142 - 142 = 0: abar[0]
    // linspace ends at timestep 0, so the last step goes to final_alpha_cumprod: abar[0], or 1 by DDIM's default.
    const linspace = { ...ddimJson, timestep_spacing: 'linspace' }
    expect(planFromConfig(parseSchedulerConfig(linspace), schedule, { steps: 7 }).sigmas[7]).toBe(schedule.sigmaMin)
    expect(planFromConfig(parseSchedulerConfig({ ...linspace, set_alpha_to_one: undefined }), schedule, { steps: 7 }).sigmas[7]).toBe(0)
  })

  it('leaves other schedulers, and an explicit ddim: false, on the plain plan', () => {
    const pndm = parseSchedulerConfig({ ...ddimJson, _class_name: 'PNDMScheduler' })
    const schedule = scheduleFromConfig(pndm)
    expect(planFromConfig(pndm, schedule, { steps: 7 }).targets).toBeUndefined()
    const karras = planFromConfig(parseSchedulerConfig(ddimJson), schedule, { steps: 7, ddim: false, karras: true })
    expect([...karras.sigmas]).toEqual([...vpPlan(schedule, { steps: 7, karras: true }).sigmas])
  })
})
