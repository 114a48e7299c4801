#!/usr/bin/env node
// The `guidekit` process. SIGINT (Ctrl-C), SIGTERM and SIGHUP abort between sampling steps: nothing partial
// is written, folders the run made and left empty are removed, and the exit status is 128 + the signal
// (130, 143, 129). A second signal at least a second later exits at once (a launcher that forwards the
// terminal's SIGINT may deliver the first one twice). When the parent process goes away (a launcher killed
// with SIGKILL), the run stops as on SIGTERM instead of sampling on as an orphan.
import { InterruptedError } from './errors.js'
import { main } from './main.js'
import { removeCreatedFolders } from './output.js'

const controller = new AbortController()
const SIGNALS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const
let firstSignal = 0

function stop(name: keyof typeof SIGNALS): void {
  if (!controller.signal.aborted) {
    firstSignal = Date.now()
    controller.abort(new InterruptedError(name === 'SIGINT' ? 'SIGINT' : 'SIGTERM'))
  } else if (Date.now() - firstSignal > 1000) {
    removeCreatedFolders()
    process.exit(SIGNALS[name])
  }
}
for (const name of Object.keys(SIGNALS) as (keyof typeof SIGNALS)[]) process.on(name, () => stop(name))
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) stop('SIGTERM')
}, 250).unref()

function invocation(): readonly string[] {
  try {
    const parsed: unknown = JSON.parse(process.env.GUIDEKIT_INVOCATION ?? '')
    if (Array.isArray(parsed) && parsed.length > 0 && parsed.every((w) => typeof w === 'string')) return parsed
  } catch {
    // not launched by bin/guidekit.mjs
  }
  return ['guidekit']
}

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, signal: controller.signal, env: process.env, invocation: invocation() })
process.exitCode = code
