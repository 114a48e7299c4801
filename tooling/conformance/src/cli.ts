#!/usr/bin/env node
// Usage: pnpm conformance [vectors.json]
import { fileURLToPath } from 'node:url'
import { formatReport, runConformance } from './runner.js'

/** The vector files `pnpm conformance` runs without an argument (see ../README.md). */
const bundled = ['peer-vectors.json', 'variant-vectors.json'].map((name) => fileURLToPath(new URL(`../vectors/${name}`, import.meta.url)))

const arg = process.argv[2]
if (arg === '--help' || arg === '-h') {
  console.log(
    'Usage: pnpm conformance [vectors.json]\nRuns every case of a reference-vector file that maps onto guidekit and prints PASS/FAIL/SKIP per case; without a file, runs tooling/conformance/vectors/peer-vectors.json and variant-vectors.json. Exits 1 when a case fails.',
  )
  process.exit(0)
}
try {
  let failed = 0
  for (const path of arg ? [arg] : bundled) {
    const reports = await runConformance(path)
    for (const r of reports) console.log(formatReport(r))
    const count = (s: string) => reports.filter((r) => r.status === s).length
    console.log(`${path}: ${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped`)
    failed += count('fail')
  }
  process.exit(failed > 0 ? 1 : 0)
} catch (error) {
  console.error(`conformance: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(2)
}
