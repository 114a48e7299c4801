import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Denoiser, Guider, Prediction } from './contracts.js'
import { GuidekitError } from './errors.js'
import { combine } from './kernels.js'
import { eulerAncestral, euler, dpmpp2m } from './samplers.js'
import { sample, unguided } from './sample.js'
import { checkPlan, flowPlan, spacedTimesteps, vpPlan, vpSchedule } from './schedules.js'
import { Tensor } from './tensor.js'
import { gaussianDenoiser } from './toy.js'
import { wrapDenoiser } from './middleware.js'
import { referenceCfg } from './testing/index.js'
import { randn } from './noise.js'
import { ddim } from './samplers.js'


const hash = (t: Tensor) => createHash('sha256').update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)).digest('hex')
const toy = () => gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: -1 }, std: 0.5 })

describe('sample()', () => {
  it('is deterministic: same seed, same bytes (stochastic sampler included)', async () => {
    const run = () => sample({ denoiser: toy(), guider: referenceCfg(3), sampler: eulerAncestral(), plan: flowPlan({ steps: 8 }), shape: [2, 3, 4, 4], seed: 5 })
    expect(hash((await run()).samples)).toBe(hash((await run()).samples))
  })

  it('a batch with seed s equals single runs with seeds s, s+1 (stochastic sampler)', async () => {
    const plan = vpPlan(vpSchedule(), { steps: 6, karras: true })
    const denoiser = gaussianDenoiser({ family: 'vp', means: { positive: 0.3, negative: 0 } })
    const batch = await sample({ denoiser, guider: referenceCfg(2), sampler: eulerAncestral(), plan, shape: [3, 2, 8], seed: 100 })
    expect(batch.seeds).toEqual([100, 101, 102])
    for (let i = 0; i < 3; i++) {
      const single = await sample({ denoiser, guider: referenceCfg(2), sampler: eulerAncestral(), plan, shape: [1, 2, 8], seed: 100 + i })
      expect([...single.samples.data]).toEqual([...batch.samples.batchSlice(i).data])
    }
  })

  it('counts model calls, branch evaluations and NFE, and reports progress', async () => {
    const progress: number[] = []
    const denoiser = toy()
    const r = await sample({ denoiser, guider: referenceCfg(3), sampler: dpmpp2m(), plan: flowPlan({ steps: 7 }), shape: [2, 4], onProgress: (p) => progress.push(p.step) })
    expect(r.modelCalls).toBe(7) // one batched call per step
    expect(denoiser.calls).toBe(7)
    expect(r.branchEvaluations).toBe(14)
    expect(r.nfe).toBe(14) // per image, as papers count (cond + uncond)
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7])
    const u = await sample({ denoiser: toy(), guider: unguided(), sampler: euler(), plan: flowPlan({ steps: 7 }), shape: [2, 4] })
    expect(u.nfe).toBe(7)
    expect(r.imageNfe).toEqual([14, 14])
  })

  it("counts each image's own NFE when a guider evaluates a branch for some images only", async () => {
    // The positive branch for every image, the negative one for image 1 alone: images cost 5 and 10.
    const partial: Guider = {
      specificationVersion: 'v1',
      name: 'partial',
      start: () => ({
        async step(ctx) {
          const [c] = (await ctx.predict([{ role: 'positive' }, { role: 'negative', samples: [1] }])) as [Prediction, Prediction]
          return { denoised: c.denoised, renoise: c.denoised }
        },
      }),
    }
    const r = await sample({ denoiser: toy(), guider: partial, sampler: euler(), plan: flowPlan({ steps: 5 }), shape: [3, 4], seed: 1 })
    expect(r.imageNfe).toEqual([5, 10, 5])
    expect(r.nfe).toBeCloseTo(20 / 3, 12)
  })

  it('honours an AbortSignal mid-trajectory', async () => {
    const controller = new AbortController()
    const promise = sample({
      denoiser: toy(), guider: referenceCfg(2), sampler: euler(), plan: flowPlan({ steps: 20 }), shape: [1, 4], signal: controller.signal,
      onProgress: (p) => { if (p.step === 3) controller.abort() },
    })
    await expect(promise).rejects.toMatchObject({ code: 'ABORTED' })
    await expect(promise).rejects.toThrowError(/before step 4/)
  })

  it('stops with NON_FINITE naming the step and branch when a prediction has NaN', async () => {
    const inner = toy()
    const broken: Denoiser = {
      specificationVersion: 'v1',
      family: 'flow',
      async predict(request) {
        const out = await inner.predict(request)
        if (request.sigma < 0.5) out[1]?.denoised.data.fill(Number.NaN)
        return out
      },
    }
    const err = await sample({ denoiser: broken, guider: referenceCfg(2), sampler: euler(), plan: flowPlan({ steps: 10 }), shape: [1, 4] }).catch((e: unknown) => e)
    expect(GuidekitError.isInstance(err)).toBe(true)
    expect((err as GuidekitError).code).toBe('NON_FINITE')
    expect((err as GuidekitError).message).toMatch(/Step 6\/10 .* 'negative' prediction \(denoised\) has NaN/)
  })

  it('rejects bad arguments with clear errors', async () => {
    const base = { denoiser: toy(), guider: unguided(), sampler: euler() }
    expect(() => flowPlan({ steps: 0 })).toThrowError(/steps must be an integer >= 1, got 0/)
    expect(() => spacedTimesteps({ trainSteps: 1000, steps: 10, spacing: 'sideways' as never })).toThrowError(/spacing must be 'leading', 'trailing', 'linspace'/)
    expect(() => checkPlan({ family: 'flow', sigmas: Float64Array.from([1, 0.5, 0.7, 0]), timesteps: Float64Array.from([1000, 500, 700]) })).toThrowError(/must be decreasing/)
    expect(() => checkPlan({ family: 'flow', sigmas: Float64Array.from([1, 0]), timesteps: Float64Array.from([1, 2]) })).toThrowError(/sigmas length/)
    await expect(sample({ ...base, plan: vpPlan(vpSchedule(), { steps: 4 }), shape: [1, 4] })).rejects.toThrowError(/plan is for the 'vp' family but the denoiser is 'flow'/)
    await expect(sample({ ...base, plan: flowPlan({ steps: 4 }) })).rejects.toThrowError(/needs shape/)
    await expect(sample({ ...base, plan: flowPlan({ steps: 4 }), shape: [2, 4], seeds: [1] })).rejects.toThrowError(/one seed per image/)
    const wrongShape: Denoiser = {
      specificationVersion: 'v1',
      family: 'flow',
      predict: async () => [{ denoised: Tensor.zeros([1, 5]), noise: Tensor.zeros([1, 5]) }],
    }
    await expect(sample({ ...base, denoiser: wrongShape, plan: flowPlan({ steps: 2 }), shape: [1, 4] })).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' })
  })

  it('starts from given latents (no noise drawn)', async () => {
    const latents = Tensor.full([1, 4], 0.25)
    const r = await sample({ denoiser: toy(), guider: unguided(), sampler: euler(), plan: flowPlan({ steps: 3 }), latents })
    expect(r.samples.shape).toEqual([1, 4])
    expect(latents.data[0]).toBe(0.25) // inputs are not modified
  })
})

describe('schedules', () => {
  it('produces SD1.5 sigmas and the documented spacings', () => {
    const sd = vpSchedule()
    expect(sd.sigmaMin).toBeCloseTo(0.0291675, 6)
    expect(sd.sigmaMax).toBeCloseTo(14.614645, 4)
    expect(spacedTimesteps({ trainSteps: 1000, steps: 20, spacing: 'leading', stepsOffset: 1 }).slice(0, 3)).toEqual([951, 901, 851])
    expect(spacedTimesteps({ trainSteps: 1000, steps: 20, spacing: 'trailing' }).slice(-2)).toEqual([99, 49])
    expect(spacedTimesteps({ trainSteps: 1000, steps: 20, spacing: 'linspace-exclusive' }).slice(-1)).toEqual([50])
    const cos = vpSchedule({ betaSchedule: 'squaredcos_cap_v2' })
    expect(cos.alphasCumprod[0]).toBeGreaterThan(0.9999)
    expect(cos.alphasCumprod[999]).toBeLessThan(1e-4)
    expect(sd.timestepOf(sd.sigmaAt(500.25))).toBeCloseTo(500.25, 1)
    expect(flowPlan({ steps: 10, shift: 3 }).sigmas[9]).toBeCloseTo(0.00892857, 6)
  })

  it('rejects invalid schedule parameters', () => {
    expect(() => vpSchedule({ betaSchedule: 'cubic' as never })).toThrowError(/betaSchedule must be/)
    expect(() => vpSchedule({ betaEnd: 2 })).toThrowError(/betaEnd/)
    expect(() => spacedTimesteps({ trainSteps: 1000, steps: 20, spacing: 'leading', stepsOffset: 60 })).toThrowError(/timesteps must be within/)
    expect(() => flowPlan({ steps: 5, shift: -1 })).toThrowError(/shift must be/)
  })
})

describe('sample() blames the component at fault', () => {
  const plan = flowPlan({ steps: 3 })
  const base = { denoiser: toy(), sampler: euler(), plan, shape: [1, 4], seed: 1 }
  const guiderReturning = (f: (x: Tensor) => unknown): Guider => ({
    specificationVersion: 'v1',
    name: 'broken',
    start: () => ({ step: async (ctx) => f(ctx.x) as never }),
  })

  it('rejects things that are not a denoiser, guider or sampler before sampling', async () => {
    await expect(sample({ ...base, guider: {} as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('guider must be a Guider') })
    await expect(sample({ ...base, guider: referenceCfg(2), sampler: null as never })).rejects.toMatchObject({ message: expect.stringContaining('sampler must be a Sampler') })
    await expect(sample({ ...base, guider: referenceCfg(2), denoiser: { predict: 1 } as never })).rejects.toMatchObject({ message: expect.stringContaining('denoiser must be a Denoiser') })
  })

  it('names the guider when its step resolves to nothing or to a wrong shape', async () => {
    await expect(sample({ ...base, guider: guiderReturning(() => undefined) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('guider broken returned undefined') })
    await expect(sample({ ...base, guider: guiderReturning(() => ({ denoised: Tensor.zeros([2, 4]), renoise: Tensor.zeros([2, 4]) })) })).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' })
  })

  it('blames the guider for NaN in renoise alone, at the step it happens', async () => {
    const nanRenoise = guiderReturning((x) => ({ denoised: x.clone(), renoise: Tensor.from(new Array(x.size).fill(Number.NaN), x.shape) }))
    await expect(sample({ ...base, guider: nanRenoise })).rejects.toMatchObject({ code: 'NON_FINITE', message: expect.stringMatching(/^Step 1\/3 .*guider broken produced NaN in renoise/) })
  })

  it('blames the guider (not the model) when a huge finite step makes the model return NaN one step later', async () => {
    // A "model" that overflows on absurd inputs, as a real network does (LayerNorm of 1e38 is NaN).
    const model = wrapDenoiser({
      denoiser: toy(),
      middleware: {
        wrapPredict: async ({ request, predict }) => {
          const out = await predict(request)
          if (!request.x.data.some((v) => Math.abs(v) > 1e30)) return out
          return out.map((p) => ({ denoised: Tensor.from(new Array(p.denoised.size).fill(Number.NaN), p.denoised.shape), noise: p.noise }))
        },
      },
    })
    const huge: Guider = {
      specificationVersion: 'v1',
      name: 'broken',
      start: () => ({
        async step(ctx) {
          const [p] = (await ctx.predict([{ role: 'positive' }])) as [Prediction]
          if (ctx.step > 0) return { denoised: p.denoised, renoise: p.denoised }
          const t = Tensor.from(new Array(ctx.x.size).fill(3e38), ctx.x.shape)
          return { denoised: t, renoise: t }
        },
      }),
    }
    const error = await sample({ ...base, denoiser: model, guider: huge }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'NON_FINITE' })
    expect((error as Error).message).toMatch(/^Step 2\/3 .*which step 1 of guider broken produced/)
    expect((error as Error).message).not.toMatch(/Check the model/)
  })
})

describe('sample() with per-step targets', () => {
  // diffusers' DDIMScheduler.step written out in VP space and float64 (scheduling_ddim.py, eta = 0):
  // prev_t = t - T//N, x0 = (x - sqrt(1 - a_t) eps) / sqrt(a_t), x' = sqrt(a_p) x0 + sqrt(1 - a_p) eps, and the
  // next step takes x' as the sample at its own timestep.
  async function diffusersDdim(denoiser: Denoiser, plan: ReturnType<typeof vpPlan>, latents: Tensor, finalAlpha: number): Promise<Float64Array> {
    const schedule = vpSchedule()
    const steps = plan.timesteps.length
    const s0 = plan.sigmas[0] as number
    let x = Float64Array.from(latents.data, (v) => v / Math.sqrt(1 + s0 * s0))
    for (const t of plan.timesteps) {
      const sigma = schedule.sigmas[t] as number
      const input = new Tensor(Float32Array.from(x, (v) => v * Math.sqrt(1 + sigma * sigma)), latents.shape)
      const [p] = (await denoiser.predict({ x: input, sigma, timestep: t, step: 0, steps, branches: [{ role: 'positive' }] })) as [Prediction]
      const prev = t - Math.floor(1000 / steps)
      const at = schedule.alphasCumprod[t] as number
      const ap = prev >= 0 ? (schedule.alphasCumprod[prev] as number) : finalAlpha
      x = x.map((v, j) => {
        const eps = p.noise.data[j] as number
        return Math.sqrt(ap) * ((v - Math.sqrt(1 - at) * eps) / Math.sqrt(at)) + Math.sqrt(1 - ap) * eps
      })
    }
    return x
  }

  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0)

  for (const [spacing, final] of [['trailing', 'first-train-step'], ['linspace', 'first-train-step'], ['linspace', 'zero']] as const) {
    it(`lands where diffusers' DDIM does and continues from there (${spacing}, 7 steps, final ${final})`, async () => {
      const schedule = vpSchedule()
      const plan = vpPlan(schedule, { steps: 7, spacing, ddim: true, final })
      const denoiser = gaussianDenoiser({ family: 'vp', means: { positive: 0.4 }, std: 0.8 })
      const s0 = plan.sigmas[0] as number
      const latents = randn([2, 64], 3)
      latents.data.forEach((v, i) => (latents.data[i] = v * Math.hypot(1, s0)))
      const seen: number[] = []
      const recording: Guider = {
        specificationVersion: 'v1',
        name: 'recording',
        start: (run) => {
          const inner = unguided().start(run)
          return { step: (ctx) => (seen.push(ctx.sigmaNext), inner.step(ctx)) }
        },
      }
      const result = await sample({ denoiser, guider: recording, sampler: ddim(), plan, latents })
      expect(seen).toEqual([...(plan.targets ?? [])])
      const reference = await diffusersDdim(denoiser, plan, latents, final === 'zero' ? 1 : (schedule.alphasCumprod[0] as number))
      expect(maxDiff(result.samples.data, reference)).toBeLessThan(2e-5)
      // The previous recipe (same timesteps, each step to the next timestep, no targets) ends elsewhere.
      const old = vpPlan(schedule, { steps: 7, spacing, roundTimesteps: true, final })
      const off = await sample({ denoiser, guider: unguided(), sampler: ddim(), plan: old, latents })
      expect(maxDiff(off.samples.data, reference)).toBeGreaterThan(1e-3) // measured: 6e-3 trailing, 0.33 linspace
    })
  }

  it("keeps a 'flow' sample as it is when a step lands above the next sigma", async () => {
    const plan = { ...flowPlan({ steps: 3 }), targets: Float64Array.from([0.6, 0.2, 0]) }
    const seen: number[] = []
    const inner = toy()
    const recorder: Denoiser = { specificationVersion: 'v1', family: 'flow', predict: (r) => (seen.push(r.x.data[0] as number), inner.predict(r)) }
    const latents = Tensor.full([1, 4], 0.9)
    await sample({ denoiser: recorder, guider: unguided(), sampler: euler(), plan, latents })
    const [d0] = (await inner.predict({ x: latents, sigma: 1, timestep: 1000, step: 0, steps: 1, branches: [{ role: 'positive' }] })) as [Prediction]
    // Euler from sigma 1 to 0.6 on flow: x' = (1 - 0.6) D + 0.6 (x - 0 * D) / 1; the next call sees exactly that.
    expect(seen[1]).toBeCloseTo(0.4 * (d0.denoised.data[0] as number) + 0.6 * 0.9, 6)
  })
})
