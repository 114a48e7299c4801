#!/usr/bin/env node
// Workspace launcher for the `guidekit` binary: runs src/cli.ts with tsx, resolving the @guidekit/*
// workspace packages from source (the `@guidekit/source` export condition), so no build is needed.
// It forwards SIGINT, SIGTERM and SIGHUP to the child, exits with the child's status (128 + the signal
// when the child was killed by one), and stops the child when its own parent goes away (a package manager
// that exits on a signal without forwarding it), so no orphan keeps sampling.
import { spawn } from 'node:child_process'
import { constants } from 'node:os'
import { sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
// tsx resolved from here, not from the working folder, so guidekit runs from any folder.
const tsx = import.meta.resolve('tsx')

// How the user ran guidekit, for the command each PNG records: through a package manager's bin
// (`pnpm guidekit` works anywhere in the workspace), or this file by path.
const script = process.argv[1] ?? ''
const agent = process.env.npm_config_user_agent ?? ''
const invocation = script.includes(`${sep}node_modules${sep}`)
  ? agent.startsWith('pnpm/') ? ['pnpm', 'guidekit'] : agent.startsWith('npm/') ? ['npx', 'guidekit'] : ['guidekit']
  : [process.argv0 === 'node' ? 'node' : process.execPath, script]

const child = spawn(process.execPath, ['--conditions=@guidekit/source', '--import', tsx, cli, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, GUIDEKIT_INVOCATION: JSON.stringify(invocation) },
})
for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(name, () => child.kill(name))
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) child.kill('SIGTERM')
}, 250).unref()
child.on('error', (error) => {
  process.stderr.write(`guidekit: cannot start ${process.execPath}: ${error.message}\n`)
  process.exit(1)
})
child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)))
