#!/usr/bin/env node
// Usage: pnpm conformance <vectors.json>
import { formatReport, runConformance } from './runner.js'

const path = process.argv[2]
if (!path || path === '--help' || path === '-h') {
  console.log('Usage: pnpm conformance <vectors.json>\nRuns every case of a reference-vector file that maps onto guidekit; prints PASS/FAIL/SKIP per case.')
  process.exit(path ? 0 : 2)
}
try {
  const reports = await runConformance(path)
  for (const r of reports) console.log(formatReport(r))
  const count = (s: string) => reports.filter((r) => r.status === s).length
  console.log(`${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped`)
  process.exit(count('fail') > 0 ? 1 : 0)
} catch (error) {
  console.error(`conformance: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(2)
}
