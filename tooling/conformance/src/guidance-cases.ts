// The `guidance` section (diffusers guiders), run through the public API of the guidance packages.
//
// The vectors' c / u are epsilon-like model outputs. The guiders are run on a fake step context of the 'vp'
// family with x = 0 and sigma = 1, where each branch's prediction is { noise: m, denoised: -m }: the
// model-output-space guiders (cfg, apgDiffusers, cfgZeroStar, tangentialCfg) then see exactly the stored
// tensors and return denoised = x - sigma * pred = -pred. Every parameter is read from the case's params;
// scales are translated from diffusers' convention to the paper's w with the packages' converters.
import { apgDiffusers, apgMomentumUpdate } from '@guidekit/apg'
import { cfg, cfgZeroStar, cfgZeroStarAlpha, fromDiffusersScale, tangentialCfg } from '@guidekit/cfg'
import { Tensor, combine, guidanceRescale, interval, type Branch, type Guider, type Prediction, type StepContext } from '@guidekit/core'
import { Comparison, SINGLE_STEP, TRAJECTORY, num, tensorData, type CaseResult, type ConformanceCase, type VectorCase, type VectorFile } from './types.js'

function tensor(value: unknown, what: string): Tensor {
  const { data, shape } = tensorData(value, what)
  return new Tensor(data, shape)
}

function bool(obj: Readonly<Record<string, unknown>> | undefined, key: string): boolean {
  const v = obj?.[key]
  if (v === undefined || v === null) return false
  if (typeof v !== 'boolean') throw new Error(`parameter '${key}' must be a boolean`)
  return v
}

function negated(t: Tensor): Tensor {
  return combine([[-1, t]])
}

/** Runs one guider step on stored model outputs; returns the guided model output and the branches asked for. */
async function runGuider(guider: Guider, step: number, steps: number, outputs: Record<string, Tensor>, session = guider.start(runInfo(steps, outputs))) {
  const any = Object.values(outputs)[0] as Tensor
  const x = Tensor.zeros(any.shape)
  const asked: Branch[][] = []
  const ctx: StepContext = {
    step,
    steps,
    sigma: 1,
    sigmaNext: 0.5,
    timestep: 999,
    family: 'vp',
    x,
    async predict(branches) {
      asked.push([...branches])
      return branches.map((b): Prediction => {
        const m = outputs[b.role]
        if (!m) throw new Error(`the guider asked for branch '${b.role}', which the case does not provide`)
        return { noise: m, denoised: negated(m) }
      })
    },
  }
  const out = await session.step(ctx)
  return { pred: negated(out.denoised), asked, session }
}

function runInfo(steps: number, outputs: Record<string, Tensor>) {
  const any = Object.values(outputs)[0] as Tensor
  return { steps, sigmas: Float64Array.from({ length: steps + 1 }, (_, i) => 1 - i / steps), timesteps: new Float64Array(steps), family: 'vp' as const, shape: any.shape }
}

function pair(inputs: Readonly<Record<string, unknown>> | undefined, what: string) {
  return { positive: tensor(inputs?.pred_cond, `${what} pred_cond`), negative: tensor(inputs?.pred_uncond, `${what} pred_uncond`) }
}

function normDimParam(v: unknown): number | number[] | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'number') return v
  if (Array.isArray(v) && v.every((d) => typeof d === 'number')) return v
  throw new Error(`norm_dim must be null, a number or a list of numbers, got ${JSON.stringify(v)}`)
}

async function cfgCase(c: VectorCase): Promise<CaseResult> {
  const p = c.params
  const w = fromDiffusersScale(num(p, 'guidance_scale'), { useOriginalFormulation: bool(p, 'use_original_formulation') })
  const phi = num(p, 'guidance_rescale', 0)
  const { pred } = await runGuider(cfg({ scale: w, rescale: phi }), 0, 1, pair(c.inputs, c.id))
  return new Comparison().add('pred', pred.data, c.outputs?.pred, SINGLE_STEP).result()
}

function rescaleCase(c: VectorCase): CaseResult {
  const out = guidanceRescale(tensor(c.inputs?.noise_cfg, 'noise_cfg'), tensor(c.inputs?.noise_pred_text, 'noise_pred_text'), num(c.params, 'guidance_rescale'))
  return new Comparison().add('noise_cfg', out.data, c.outputs?.noise_cfg, SINGLE_STEP).result()
}

async function gatingCase(c: VectorCase): Promise<CaseResult> {
  const schedules = c.outputs?.schedules
  if (!Array.isArray(schedules)) throw new Error('outputs.schedules must be a list')
  const scale = num(c.params, 'guidance_scale')
  const cmp = new Comparison()
  const outputs = { positive: Tensor.zeros([1, 1]), negative: Tensor.zeros([1, 1]) }
  for (const [k, s] of (schedules as Record<string, unknown>[]).entries()) {
    const steps = num(s, 'num_inference_steps')
    const guider = interval(cfg({ scale }), { fraction: [num(s, 'start'), num(s, 'stop')] })
    const session = guider.start(runInfo(steps, outputs))
    const perStep: { step: number; enabled: boolean; num_conditions: number }[] = []
    for (let step = 0; step < steps; step++) {
      const { asked } = await runGuider(guider, step, steps, outputs, session)
      const numConditions = asked.reduce((a, b) => a + b.length, 0)
      perStep.push({ step, enabled: numConditions > 1, num_conditions: numConditions })
    }
    const expected = (s.per_step as { step: number; enabled: boolean; num_conditions: number }[]).map((e) => ({ step: e.step, enabled: e.enabled, num_conditions: e.num_conditions }))
    cmp.exact(`schedule ${k}`, perStep, expected)
  }
  return cmp.result()
}

async function apgCase(c: VectorCase): Promise<CaseResult> {
  const p = c.params
  const normDim = normDimParam(p?.norm_dim)
  const momentum = p?.momentum
  if (momentum !== undefined && momentum !== null && typeof momentum !== 'number') throw new Error('momentum must be null or a number')
  const guider = apgDiffusers({
    scale: num(p, 'guidance_scale'),
    eta: num(p, 'eta', 1),
    normThreshold: num(p, 'norm_threshold', 0),
    useOriginalFormulation: bool(p, 'use_original_formulation'),
    momentum: typeof momentum === 'number' ? momentum : 0,
    rescale: num(p, 'guidance_rescale', 0),
    ...(normDim === undefined ? {} : { normDim }),
  })
  const { pred } = await runGuider(guider, 0, 1, pair(c.inputs, c.id))
  return new Comparison().add('pred', pred.data, c.outputs?.pred, SINGLE_STEP).result()
}

async function apgSequenceCase(c: VectorCase): Promise<CaseResult> {
  const p = c.params
  const steps = c.inputs?.steps
  if (!Array.isArray(steps)) throw new Error('inputs.steps must be a list')
  const momentum = num(p, 'adaptive_projected_guidance_momentum', 0)
  const normDim = normDimParam(p?.adaptive_projected_guidance_norm_dim ?? p?.norm_dim)
  const guider = apgDiffusers({
    scale: num(p, 'guidance_scale'),
    eta: num(p, 'eta', 1),
    momentum,
    normThreshold: num(p, 'adaptive_projected_guidance_rescale', 0),
    useOriginalFormulation: bool(p, 'use_original_formulation'),
    rescale: num(p, 'guidance_rescale', 0),
    ...(normDim === undefined ? {} : { normDim }),
  })
  const preds = c.outputs?.pred_per_step as unknown[] | undefined
  const averages = c.outputs?.running_average_per_step as unknown[] | undefined
  const cmp = new Comparison()
  let session = undefined as ReturnType<Guider['start']> | undefined
  let ra: Tensor | null = null
  for (const [k, s] of (steps as Record<string, unknown>[]).entries()) {
    const outputs = pair(s, `${c.id} step ${k}`)
    const run = await runGuider(guider, k, steps.length, outputs, session)
    session = run.session
    cmp.add(`pred step ${k}`, run.pred.data, preds?.[k], SINGLE_STEP)
    if (averages) {
      const diff = combine([
        [1, outputs.positive],
        [-1, outputs.negative],
      ])
      ra = apgMomentumUpdate(ra, diff, momentum)
      cmp.add(`running average step ${k}`, ra.data, averages[k], SINGLE_STEP)
    }
  }
  return cmp.result()
}

async function zeroStarCase(c: VectorCase): Promise<CaseResult> {
  const p = c.params
  const w = fromDiffusersScale(num(p, 'guidance_scale'), { useOriginalFormulation: bool(p, 'use_original_formulation') })
  const zeroInitSteps = num(p, 'zero_init_steps', 1)
  const outputs = pair(c.inputs, c.id)
  const cmp = new Comparison()
  cmp.add('alpha_per_sample', cfgZeroStarAlpha(outputs.positive, outputs.negative), c.outputs?.alpha_per_sample, SINGLE_STEP)
  // The README runs these cases at steps 0 and 1 of n = 10 steps (a file may say otherwise).
  const steps = num(p, 'num_inference_steps', 10)
  const phi = num(p, 'guidance_rescale', 0)
  const start = num(p, 'start', 0)
  const stop = num(p, 'stop', 1)
  const guider = cfgZeroStar({ scale: w, zeroInitSteps })
  const session = guider.start(runInfo(steps, outputs))
  for (const step of [0, 1]) {
    const key = `pred_step${step}`
    if (c.outputs?.[key] === undefined) continue
    const enabled = Math.trunc(start * steps) <= step && step < Math.trunc(stop * steps)
    let pred = enabled ? (await runGuider(guider, step, steps, outputs, session)).pred : outputs.positive
    // diffusers applies guidance rescale after CFG-Zero* (a no-op at zero-init steps, where pred = 0).
    if (phi > 0 && enabled && step >= zeroInitSteps) pred = guidanceRescale(pred, outputs.positive, phi)
    cmp.add(key, pred.data, c.outputs[key], SINGLE_STEP)
  }
  return cmp.result()
}

async function tcfgCase(c: VectorCase): Promise<CaseResult> {
  const p = c.params
  const w = fromDiffusersScale(num(p, 'guidance_scale'), { useOriginalFormulation: bool(p, 'use_original_formulation') })
  const { pred } = await runGuider(tangentialCfg({ scale: w }), 0, 1, pair(c.inputs, c.id))
  return new Comparison().add('pred', pred.data, c.outputs?.pred, TRAJECTORY).result()
}

const methods: Record<string, (c: VectorCase) => Promise<CaseResult> | CaseResult> = {
  cfg: cfgCase,
  rescale_noise_cfg: rescaleCase,
  cfg_gating: gatingCase,
  apg: apgCase,
  apg_sequence: apgSequenceCase,
  cfg_zero_star: zeroStarCase,
  tcfg: tcfgCase,
}

export function guidanceCases(file: VectorFile): ConformanceCase[] {
  return (file.guidance ?? []).map((c) => ({
    id: c.id,
    run: () => {
      const run = methods[c.method]
      return run ? run(c) : { status: 'skip' as const, note: `method '${c.method}' is not mapped onto guidekit` }
    },
  }))
}
