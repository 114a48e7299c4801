import { readFile } from 'node:fs/promises'
import { comfyCases } from './comfy-cases.js'
import { guidanceCases } from './guidance-cases.js'
import { schedulerCases } from './scheduler-cases.js'
import type { CaseResult, VectorFile } from './types.js'

export interface CaseReport extends CaseResult {
  readonly id: string
}

/** Loads a vector file and runs every case it can map onto guidekit. */
export async function runConformance(path: string): Promise<CaseReport[]> {
  const file = JSON.parse(await readFile(path, 'utf8')) as VectorFile
  return runVectors(file)
}

export async function runVectors(file: VectorFile): Promise<CaseReport[]> {
  const cases = [...schedulerCases(file), ...guidanceCases(file), ...comfyCases(file)]
  const reports: CaseReport[] = []
  for (const c of cases) {
    try {
      reports.push({ id: c.id, ...(await c.run()) })
    } catch (error) {
      reports.push({ id: c.id, status: 'fail', note: error instanceof Error ? error.message : String(error) })
    }
  }
  return reports
}

/** One line per case: `PASS|FAIL|SKIP id max-abs-diff`. */
export function formatReport(r: CaseReport): string {
  const diff = r.maxAbsDiff === undefined ? '-' : r.maxAbsDiff.toExponential(2)
  return `${r.status.toUpperCase()} ${r.id} ${diff}${r.note ? `  (${r.note})` : ''}`
}
