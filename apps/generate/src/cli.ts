#!/usr/bin/env node
// The `guidekit` binary. Ctrl-C aborts between sampling steps (exit 130, no partial files); a second
// Ctrl-C exits at once.
import { main } from './main.js'

const controller = new AbortController()
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(130)
  controller.abort(new Error('SIGINT'))
})

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, signal: controller.signal, env: process.env })
process.exitCode = code
