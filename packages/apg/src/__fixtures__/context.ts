import { Tensor, type Branch, type Guider, type Prediction, type StepContext } from '@guidekit/core'

/** A step context serving fixed predictions per role; records every predict call. */
export function fakeContext(options: { x: Tensor; sigma?: number; step?: number; steps?: number; family?: 'vp' | 'flow'; predictions: Record<string, Prediction> }) {
  const calls: Branch[][] = []
  const ctx: StepContext = {
    step: options.step ?? 0,
    steps: options.steps ?? 10,
    sigma: options.sigma ?? 1,
    sigmaNext: 0.5,
    timestep: 500,
    family: options.family ?? 'vp',
    x: options.x,
    async predict(branches) {
      calls.push([...branches])
      return branches.map((b) => {
        const p = options.predictions[b.role]
        if (!p) throw new Error(`no prediction for ${b.role}`)
        return p
      })
    },
  }
  return { ctx, calls }
}

export function startSession(guider: Guider, steps = 10, shape: readonly number[] = [2, 3]) {
  return guider.start({ steps, sigmas: new Float64Array(steps + 1), timesteps: new Float64Array(steps), family: 'vp', shape })
}

/** Predictions with model output (epsilon) m at x = 0, sigma = 1: denoised = -m. */
export function fromEpsilon(m: Tensor, x: Tensor = Tensor.zeros(m.shape), sigma = 1): Prediction {
  return { noise: m, denoised: Tensor.from(m.data.map((v, i) => (x.data[i] as number) - sigma * v), m.shape) }
}
