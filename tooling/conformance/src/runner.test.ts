import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runVectors } from './runner.js'
import type { VectorFile } from './types.js'

const vectorsPath = fileURLToPath(new URL('../../../../shared/reference/vectors/peer-vectors.json', import.meta.url))
const present = existsSync(vectorsPath)
const load = (): VectorFile => JSON.parse(readFileSync(vectorsPath, 'utf8')) as VectorFile

describe.skipIf(!present)('conformance against the shared reference vectors', () => {
  it('passes every case it runs and fails none', async () => {
    const reports = await runVectors(load())
    const failed = reports.filter((r) => r.status === 'fail')
    expect(failed.map((r) => `${r.id}: ${r.note ?? r.ratio}`)).toEqual([])
    const schedulerCases = reports.filter((r) => r.id.startsWith('schedulers/'))
    expect(schedulerCases.length).toBeGreaterThanOrEqual(30)
    expect(schedulerCases.every((r) => r.status === 'pass')).toBe(true)
  })

  it('reads parameters from each case, not its id: changing a config makes the case fail', async () => {
    const file = load() as { schedulers: Record<string, any> }
    file.schedulers.ddim_trajectory.config.steps_offset = 0
    file.schedulers.euler_karras_trajectory.config.use_karras_sigmas = false
    file.schedulers.flow_match_euler_trajectory.config.shift = 2
    const reports = await runVectors(file as VectorFile)
    const status = (id: string) => reports.find((r) => r.id === id)?.status
    expect(status('schedulers/ddim_trajectory')).toBe('fail')
    expect(status('schedulers/euler_karras_trajectory')).toBe('fail')
    expect(status('schedulers/flow_match_euler_trajectory')).toBe('fail')
    expect(status('schedulers/euler_ancestral_trajectory')).toBe('pass')
  })
})
