import { parseParameters } from '@guidekit/grammar'
import { describe, expect, it } from 'vitest'
import { imageFileName, imageTexts, reproduceCommand, type ImageRecord } from './metadata.js'

const record: ImageRecord = {
  model: 'fashion-dit',
  rlModel: undefined,
  className: 'Ankle boot',
  guidance: 'apg:scale=5,eta=0',
  guider: 'apg(scale=5)',
  sampler: 'euler',
  steps: 30,
  spacing: undefined,
  karras: undefined,
  seed: 3,
  width: 28,
  height: 28,
  nfe: 60,
}

describe('PNG metadata', () => {
  it('writes the CLI parameters fields in the CLI order', () => {
    const { parameters } = imageTexts(record)
    expect(parameters).toBe('Ankle boot\nSteps: 30, Sampler: euler, Guidance: "apg:scale=5,eta=0", Seed: 3, Size: 28x28, Model: fashion-dit, Precision: fp32, Model file: fashion-dit.onnx, Attention: dense, NFE: 60, Version: guidekit 0.0.0')
    expect(parseParameters(parameters).fields.Guidance).toBe('apg:scale=5,eta=0')
  })

  it('adds the RL model after Model for rows that use one', () => {
    const { parameters } = imageTexts({ ...record, guidance: 'rlg:scale=1.5,inner=cfg:scale=3', rlModel: 'fashion-dit-rl' })
    expect(parameters).toContain('Model: fashion-dit, Precision: fp32, Model file: fashion-dit.onnx, RL model: fashion-dit-rl, Attention: dense')
  })

  it('records the command that reproduces the image with the CLI, shell-quoted', () => {
    expect(reproduceCommand(record)).toBe("guidekit generate --model fashion-dit --class 'Ankle boot' --guidance apg:scale=5,eta=0 --sampler euler --steps 30 --precision fp32 --seed 3")
    const json = JSON.parse(imageTexts(record).guidekit) as Record<string, unknown>
    expect(json).toMatchObject({ version: '0.0.0', command: reproduceCommand(record), class: 'Ankle boot', guider: 'apg(scale=5)', nfe: 60, attention: 'dense' })
    expect(json).not.toHaveProperty('rlModel')
  })

  it('records spacing and Karras for VP models, in the CLI order, and passes them in the command', () => {
    const unet: ImageRecord = { ...record, model: 'fashion-unet', sampler: 'ddim:eta=0', spacing: 'linspace', karras: false }
    const { parameters, guidekit } = imageTexts(unet)
    // values with ':' or '=' are quoted, as the CLI's formatParameters writes them
    expect(parameters).toContain('Steps: 30, Sampler: "ddim:eta=0", Spacing: linspace, Karras: no, Guidance:')
    expect(parseParameters(parameters).fields.Sampler).toBe('ddim:eta=0')
    expect(reproduceCommand(unet)).toBe("guidekit generate --model fashion-unet --class 'Ankle boot' --guidance apg:scale=5,eta=0 --sampler ddim:eta=0 --steps 30 --spacing linspace --precision fp32 --seed 3")
    expect(JSON.parse(guidekit)).toMatchObject({ steps: 30, spacing: 'linspace', karras: false, seed: 3 })
    expect(reproduceCommand({ ...unet, karras: true })).toContain('--spacing linspace --karras --precision fp32 --seed 3')
  })

  it('names files <model>-<class>-<guidance>-s<seed>.png', () => {
    expect(imageFileName(record)).toBe('fashion-dit-ankle-boot-apg-scale-5-eta-0-s3.png')
  })
})
