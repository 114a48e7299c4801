import { readFileSync } from 'node:fs'
import { Tensor, ddim, sample, toPrediction, unguided, vpPlan, vpSchedule, type Denoiser } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { runVectors } from './runner.js'
import type { VectorFile } from './types.js'

// Both files live in the repository (vectors/README.md), so these tests always run: a missing file fails them.
const load = (name: string): VectorFile => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as VectorFile
const problems = (reports: Awaited<ReturnType<typeof runVectors>>) => reports.filter((r) => r.status !== 'pass').map((r) => `${r.status} ${r.id}: ${r.note ?? r.ratio}`)

describe('conformance against the shared reference vectors (peer-vectors.json)', () => {
  it('runs every case and passes all of them', async () => {
    const reports = await runVectors(load('peer-vectors.json'))
    expect(problems(reports)).toEqual([])
    expect(reports.filter((r) => r.id.startsWith('schedulers/')).length).toBeGreaterThanOrEqual(30)
  })

  it('reads parameters from each case, not its id: changing a config makes the case fail', async () => {
    const file = load('peer-vectors.json') as { schedulers: Record<string, any> }
    file.schedulers.ddim_trajectory.config.steps_offset = 0
    file.schedulers.euler_karras_trajectory.config.use_karras_sigmas = false
    file.schedulers.flow_match_euler_trajectory.config.shift = 2
    const reports = await runVectors(file)
    const status = (id: string) => reports.find((r) => r.id === id)?.status
    expect(status('schedulers/ddim_trajectory')).toBe('fail')
    expect(status('schedulers/euler_karras_trajectory')).toBe('fail')
    expect(status('schedulers/flow_match_euler_trajectory')).toBe('fail')
    expect(status('schedulers/euler_ancestral_trajectory')).toBe('pass')
  })
})

describe('conformance against the generated step-count variants (variant-vectors.json)', () => {
  it('runs every case and passes all of them, for every scheduler at 7, 12, 13, 33 and 50 steps', async () => {
    const reports = await runVectors(load('variant-vectors.json'))
    expect(problems(reports)).toEqual([])
    const kinds = ['ddim_trajectory', 'euler_trajectory', 'euler_karras_trajectory', 'euler_ancestral_trajectory', 'dpmpp_2m_trajectory', 'flow_match_euler_trajectory']
    for (const kind of kinds) {
      for (const n of [7, 12, 13, 33, 50]) expect(reports.some((r) => r.id.startsWith(`schedulers/${kind}/`) && r.id.includes(`/n${n}`)), `${kind} at ${n} steps`).toBe(true)
    }
    for (const spacing of ['leading_offset0', 'leading_offset1', 'trailing', 'linspace']) {
      expect(reports.filter((r) => r.id.startsWith(`schedulers/ddim_trajectory/${spacing}/`)).length).toBeGreaterThanOrEqual(20)
    }
  })

  it('pins diffusers\' DDIM landing rule: a DDIM stepping to the next timestep misses the trailing/linspace cases', async () => {
    // The plan guidekit used before `ddim: true` (same timesteps, every step to the next one): replayed on the
    // stored model outputs it ends away from the stored samples wherever t - T//N is not the next timestep.
    const s = (load('variant-vectors.json') as { schedulers: Record<string, any> }).schedulers // all SD1.5 (vpSchedule())
    const misses: string[] = []
    const keys = Object.keys(s).filter((k) => /^ddim_trajectory\/(trailing|linspace)\/n\d+\/epsilon\/eta0$/.test(k))
    expect(keys).toHaveLength(10)
    for (const key of keys) {
      const c = s[key]
      const plan = vpPlan(vpSchedule(), { steps: c.num_inference_steps, spacing: c.config.timestep_spacing, roundTimesteps: true, final: 'first-train-step' })
      let i = 0
      const denoiser: Denoiser = {
        specificationVersion: 'v1',
        family: 'vp',
        predict: async ({ x, sigma }) => [toPrediction({ output: new Tensor(Float32Array.from(c.model_output_per_step[i++].data), x.shape), x, sigma, parameterization: 'epsilon', family: 'vp' })],
      }
      const s0 = plan.sigmas[0] as number
      const latents = new Tensor(Float32Array.from(c.x_init.data, (v: number) => v * Math.hypot(1, s0)), c.x_init.shape)
      const { samples } = await sample({ denoiser, guider: unguided(), sampler: ddim(), plan, latents })
      const expected = c.x_after_step[c.num_inference_steps - 1].data as number[]
      if (expected.some((b, j) => Math.abs((samples.data[j] as number) - b) > 1e-4 + 1e-4 * Math.abs(b))) misses.push(key)
    }
    // trailing at 50 steps steps by exactly T//N = 20, so only it still matches.
    expect(misses.sort()).toEqual(keys.filter((k) => k !== 'ddim_trajectory/trailing/n50/epsilon/eta0').sort())
  })
})
