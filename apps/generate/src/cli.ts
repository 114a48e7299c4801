#!/usr/bin/env node
// The `guidekit` binary. Ctrl-C aborts between sampling steps (exit 130, no partial files); a second
// Ctrl-C at least a second later exits at once (a launcher forwarding the terminal's SIGINT may deliver
// the first one twice).
import { main } from './main.js'

const controller = new AbortController()
let firstInterrupt = 0
process.on('SIGINT', () => {
  if (!controller.signal.aborted) {
    firstInterrupt = Date.now()
    controller.abort(new Error('SIGINT'))
  } else if (Date.now() - firstInterrupt > 1000) {
    process.exit(130)
  }
})

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, signal: controller.signal, env: process.env })
process.exitCode = code
