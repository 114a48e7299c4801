// Real model inputs for calibration and validation: Fashion-MNIST training images noised to the timesteps
// a 30-step sampling plan visits, as the model saw them in training, with the class label on even rows and
// the null (unconditional) label on odd rows, the two halves of a CFG batch. As in sampling, the rows of one
// ONNX Runtime call share a timestep: DynamicQuantizeMatMul quantizes each call's activations with one scale.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { GuidekitError, randn } from '@guidekit/core'
import { readIdxImages, readIdxLabels } from '@guidekit/eval'
import { planFromCard, scheduleFromCard, type AnyModelCard } from '@guidekit/onnx'

/** The three inputs of a guidekit generator for `rows` rows. */
export interface ModelFeeds {
  readonly rows: number
  readonly sample: Float32Array
  readonly timestep: Float32Array
  readonly classLabels: BigInt64Array
}

/** Where Debian's dataset-fashion-mnist puts the IDX files (FASHION_MNIST_DIR overrides). */
/** Images per ONNX Runtime call (2x rows with CFG); consecutive groups of this many share a timestep. */
export const IMAGES_PER_CALL = 32

export const fashionMnistDir = (): string => process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist'

function readGz(path: string): Uint8Array {
  try {
    return gunzipSync(readFileSync(path))
  } catch (cause) {
    throw new GuidekitError('IO_ERROR', `Cannot read ${path}: ${cause instanceof Error ? cause.message : String(cause)}. Install Debian's dataset-fashion-mnist or set FASHION_MNIST_DIR.`, { cause })
  }
}

/**
 * `rows` model inputs built from Fashion-MNIST training images `offset ...`: row i uses image
 * `offset + floor(i / 2)`, the timestep `plan.timesteps[floor(i / 64) mod 30]` (a call's worth of rows share it)
 * and seeded Gaussian noise shared by the pair, so each pair is one CFG evaluation (class label, then null).
 *
 * Flow cards: x_t = (1 - t) x0 + t noise with t = timestep / trainSteps. VP cards: the model input
 * sqrt(abar_t) x0 + sqrt(1 - abar_t) noise (the sampler's x divided by sqrt(1 + sigma^2)).
 */
export function trainingFeeds(card: AnyModelCard, options: { readonly rows: number; readonly offset: number; readonly seed: number }): ModelFeeds {
  const { rows, offset, seed } = options
  if (card.kind !== 'generator') throw new GuidekitError('UNSUPPORTED', `${card.name} is a ${card.kind} card; model inputs are built only for class-conditional generators.`)
  if (!Number.isInteger(rows) || rows < 2 || rows % 2 !== 0) {
    throw new GuidekitError('INVALID_ARGUMENT', `rows must be an even integer >= 2 (CFG pairs), got ${rows}.`)
  }
  const pairs = rows / 2
  const dir = fashionMnistDir()
  const images = readIdxImages(readGz(join(dir, 'train-images-idx3-ubyte.gz')), offset + pairs)
  const labels = readIdxLabels(readGz(join(dir, 'train-labels-idx1-ubyte.gz')), offset + pairs)
  if (labels.length < offset + pairs) throw new GuidekitError('INVALID_ARGUMENT', `the training set has ${labels.length} images, fewer than offset + rows / 2 = ${offset + pairs}.`)
  const size = 28 * 28
  const plan = planFromCard(card, { steps: 30 })
  const vp = scheduleFromCard(card)
  const trainSteps = card.schedule.trainSteps ?? 1000
  const noise = randn([pairs, 1, 28, 28], seed).data
  const sample = new Float32Array(rows * size)
  const timestep = new Float32Array(rows)
  const classLabels = new BigInt64Array(rows)
  const nullClass = BigInt(card.nullClass ?? 10)
  for (let p = 0; p < pairs; p++) {
    const t = plan.timesteps[Math.floor(p / IMAGES_PER_CALL) % plan.timesteps.length] as number
    let a: number
    let b: number
    if (vp) {
      const abar = vp.alphasCumprod[Math.round(t)] as number
      a = Math.sqrt(abar)
      b = Math.sqrt(1 - abar)
    } else {
      b = t / trainSteps
      a = 1 - b
    }
    for (let k = 0; k < size; k++) {
      const v = a * (images.data[(offset + p) * size + k] as number) + b * (noise[p * size + k] as number)
      sample[2 * p * size + k] = v
      sample[(2 * p + 1) * size + k] = v
    }
    timestep[2 * p] = t
    timestep[2 * p + 1] = t
    classLabels[2 * p] = BigInt(labels[offset + p] as number)
    classLabels[2 * p + 1] = nullClass
  }
  return { rows, sample, timestep, classLabels }
}

/** Rows `start ... start + count` of `feeds`. */
export function sliceFeeds(feeds: ModelFeeds, start: number, count: number): ModelFeeds {
  const size = feeds.sample.length / feeds.rows
  return {
    rows: count,
    sample: feeds.sample.subarray(start * size, (start + count) * size),
    timestep: feeds.timestep.subarray(start, start + count),
    classLabels: feeds.classLabels.subarray(start, start + count),
  }
}
