// The `comfy_samplers` section (ComfyUI samplers and guidance nodes), run through guidekit's public API:
// core's sample() loop and samplers with the guidance packages' guiders, on the closed-form toy denoisers
// the file describes (`toy_denoisers`). Every parameter comes from the case (cond_scale, params, inputs).
import { apgComfy } from '@guidekit/apg'
import { cfg, cfgZeroStarX0 } from '@guidekit/cfg'
import { cfgPlusPlus } from '@guidekit/cfg-pp'
import {
  Tensor,
  dpmpp2m,
  euler,
  eulerAncestral,
  familyAlpha,
  sample,
  type Denoiser,
  type Guider,
  type NoiseFamily,
  type NoiseSource,
  type Prediction,
  type Sampler,
  type StepContext,
} from '@guidekit/core'
import { Comparison, SINGLE_STEP, TRAJECTORY, num, tensorData, type CaseResult, type ConformanceCase, type VectorCase, type VectorFile } from './types.js'

function tensor(value: unknown, what: string): Tensor {
  const { data, shape } = tensorData(value, what)
  return new Tensor(data, shape)
}

/** The toy denoiser families of vectors/README.md §4. */
const toyFamilies: Record<string, NoiseFamily> = { eps_ve: 'vp', const_flow: 'flow' }

/**
 * The exact posterior mean of x0 ~ N(mu, I), per branch role ('positive' uses mu_cond, 'negative' mu_uncond):
 * eps_ve: D = (x + s^2 mu)/(1 + s^2); const_flow: D = ((1 - s) x + s^2 mu)/((1 - s)^2 + s^2).
 * Records the sigma of every model call (one per distinct model per request).
 */
function toyDenoiser(kind: string, means: Record<string, Tensor>): Denoiser & { calls: number[] } {
  const family = toyFamilies[kind]
  if (!family) throw new Error(`unknown toy_denoiser '${kind}'`)
  const calls: number[] = []
  return {
    specificationVersion: 'v1',
    family,
    calls,
    async predict({ x, sigma, branches }) {
      for (let k = 0; k < new Set(branches.map((b) => b.model ?? '')).size; k++) calls.push(sigma)
      const a = familyAlpha(family, sigma)
      const n = x.sampleSize
      return branches.map((b): Prediction => {
        const mu = means[b.role]
        if (!mu) throw new Error(`the guider asked for branch '${b.role}', which the toy denoiser does not have`)
        const rows = b.samples ?? Array.from({ length: x.batch }, (_, i) => i)
        const denoised = new Float32Array(rows.length * n)
        const noise = new Float32Array(rows.length * n)
        rows.forEach((row, r) => {
          for (let j = 0; j < n; j++) {
            const xi = x.data[row * n + j] as number
            const m = mu.data[row * n + j] as number
            const d = family === 'vp' ? (xi + sigma * sigma * m) / (1 + sigma * sigma) : (a * xi + sigma * sigma * m) / (a * a + sigma * sigma)
            denoised[r * n + j] = d
            noise[r * n + j] = sigma > 0 ? (xi - a * d) / sigma : 0
          }
        })
        const shape = [rows.length, ...x.shape.slice(1)]
        return { denoised: new Tensor(denoised, shape), noise: new Tensor(noise, shape) }
      })
    },
  }
}

function means(c: VectorCase): Record<string, Tensor> {
  return { positive: tensor(c.inputs?.mu_cond, 'mu_cond'), negative: tensor(c.inputs?.mu_uncond, 'mu_uncond') }
}

function condScale(c: VectorCase): number {
  if (typeof c.cond_scale !== 'number') throw new Error('cond_scale must be a number')
  return c.cond_scale
}

/** A noise source replaying `inputs.noise_per_step`, one tensor per draw. */
function replayNoise(values: unknown): NoiseSource {
  const list = Array.isArray(values) ? values : []
  let i = 0
  return {
    next(shape) {
      const t = list[i]
      if (t === undefined) throw new Error(`the sampler drew noise ${i + 1} times but the case stores ${list.length} noise tensors`)
      i++
      const out = tensor(t, `noise_per_step[${i - 1}]`)
      if (out.shape.join() !== shape.join()) throw new Error(`noise_per_step[${i - 1}] has shape [${out.shape}] but the sampler wants [${shape}]`)
      return out
    },
  }
}

const samplerMethods: Record<string, (c: VectorCase) => { sampler: Sampler; guider: Guider }> = {
  sample_euler_cfg_pp: (c) => ({ sampler: euler(), guider: cfgPlusPlus({ scale: condScale(c) }) }),
  sample_euler_ancestral_cfg_pp: (c) => ({
    sampler: eulerAncestral({ eta: num(c.params, 'eta', 1), sNoise: num(c.params, 's_noise', 1) }),
    guider: cfgPlusPlus({ scale: condScale(c) }),
  }),
  sample_dpmpp_2m_cfg_pp: (c) => ({ sampler: dpmpp2m(), guider: cfgPlusPlus({ scale: condScale(c) }) }),
  sample_euler: (c) => ({ sampler: euler(), guider: cfg({ scale: condScale(c) }) }),
  sample_dpmpp_2m: (c) => ({ sampler: dpmpp2m(), guider: cfg({ scale: condScale(c) }) }),
}

async function samplerCase(c: VectorCase, make: (c: VectorCase) => { sampler: Sampler; guider: Guider }): Promise<CaseResult> {
  const denoiser = toyDenoiser(String(c.toy_denoiser), means(c))
  const sigmas = Float64Array.from(tensorData(c.inputs?.sigmas, 'sigmas').data)
  const steps = sigmas.length - 1
  const { sampler, guider } = make(c)
  const plan = { family: denoiser.family, sigmas, timesteps: sigmas.slice(0, steps).map((s) => s * 1000) }
  const result = await sample({ denoiser, guider, sampler, plan, latents: tensor(c.inputs?.x, 'x'), noise: replayNoise(c.inputs?.noise_per_step) })
  const tol = steps > 1 ? TRAJECTORY : SINGLE_STEP
  const cmp = new Comparison().add('x', result.latents.data, c.outputs?.x, tol)
  const expectedCalls = c.outputs?.model_calls_sigma
  if (Array.isArray(expectedCalls)) {
    cmp.exact('model call count', denoiser.calls.length, expectedCalls.length)
    if (denoiser.calls.length === expectedCalls.length) cmp.add('model_calls_sigma', denoiser.calls, expectedCalls as number[], SINGLE_STEP)
  }
  return cmp.result()
}

/** Runs a guider on explicit (x, sigma) calls, as ComfyUI hooks see them; returns each call's denoised. */
async function guiderCalls(guider: Guider, denoiser: Denoiser, calls: { x: Tensor; sigma: number }[]): Promise<Tensor[]> {
  const first = calls[0]
  if (!first) throw new Error('no calls')
  const steps = calls.length
  const session = guider.start({
    steps,
    sigmas: Float64Array.from([...calls.map((k) => k.sigma), 0]),
    timesteps: Float64Array.from(calls.map((k) => k.sigma * 1000)),
    family: denoiser.family,
    shape: first.x.shape,
  })
  const out: Tensor[] = []
  for (const [step, { x, sigma }] of calls.entries()) {
    const ctx: StepContext = {
      step,
      steps,
      sigma,
      sigmaNext: calls[step + 1]?.sigma ?? 0,
      timestep: sigma * 1000,
      family: denoiser.family,
      x,
      predict: (branches) => denoiser.predict({ step: 0, steps: 1, x, sigma, timestep: sigma * 1000, branches }),
    }
    out.push((await session.step(ctx)).denoised)
  }
  return out
}

async function apgNodeCase(c: VectorCase): Promise<CaseResult> {
  const denoiser = toyDenoiser(String(c.toy_denoiser), means(c))
  const guider = apgComfy({ scale: condScale(c), eta: num(c.params, 'eta', 1), normThreshold: num(c.params, 'norm_threshold', 5), momentum: num(c.params, 'momentum', 0) })
  const raw = c.inputs?.calls
  if (!Array.isArray(raw)) throw new Error('inputs.calls must be a list')
  const calls = (raw as Record<string, unknown>[]).map((k, i) => ({ x: tensor(k.x, `calls[${i}].x`), sigma: num(k, 'sigma') }))
  const outs = await guiderCalls(guider, denoiser, calls)
  const expected = c.outputs?.denoised_per_call as unknown[] | undefined
  const cmp = new Comparison()
  cmp.exact('calls', outs.length, expected?.length)
  outs.forEach((d, k) => cmp.add(`denoised call ${k}`, d.data, expected?.[k], calls.length > 1 ? TRAJECTORY : SINGLE_STEP))
  return cmp.result()
}

async function cfgZeroStarNodeCase(c: VectorCase): Promise<CaseResult> {
  const denoiser = toyDenoiser(String(c.toy_denoiser), means(c))
  const [d] = await guiderCalls(cfgZeroStarX0({ scale: condScale(c) }), denoiser, [{ x: tensor(c.inputs?.x, 'x'), sigma: num(c.inputs, 'sigma') }])
  return new Comparison().add('denoised', (d as Tensor).data, c.outputs?.denoised, SINGLE_STEP).result()
}

export function comfyCases(file: VectorFile): ConformanceCase[] {
  return (file.comfy_samplers ?? []).map((c) => ({
    id: c.id,
    run: () => {
      const make = samplerMethods[c.method]
      if (make) return samplerCase(c, make)
      if (c.method === 'comfy_apg_node') return apgNodeCase(c)
      if (c.method === 'comfy_cfg_zero_star_node') return cfgZeroStarNodeCase(c)
      return { status: 'skip' as const, note: `method '${c.method}' is not mapped onto guidekit` }
    },
  }))
}
