#!/usr/bin/env node
// Workspace launcher for the `guidekit` binary: runs src/cli.ts with tsx, resolving the @guidekit/*
// workspace packages from source (the `@guidekit/source` export condition), so no build is needed.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
const child = spawn(process.execPath, ['--conditions=@guidekit/source', '--import', 'tsx', cli, ...process.argv.slice(2)], { stdio: 'inherit' })
// Forward interrupts: from a terminal the child also gets Ctrl-C itself (same process group); the CLI
// treats a repeat within a second as the same interrupt.
process.on('SIGINT', () => child.kill('SIGINT'))
process.on('SIGTERM', () => child.kill('SIGTERM'))
child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 1)))
