// The process around the CLI: the workspace launcher and `pnpm guidekit` forward signals, exit with the
// child's status, leave no process and no partial or temporary file; --quiet is quiet through pnpm; the
// command recorded in a PNG reproduces it as typed.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import sharp from 'sharp'
import { afterAll, describe, expect, it } from 'vitest'
import { launcher, listTree, pixels, recorded, root, runProcess, scratch, tinyDit } from './__fixtures__/harness.js'

const { fresh, remove } = scratch('launcher')
afterAll(remove)

const pnpm = spawnSync('pnpm', ['--version'], { encoding: 'utf8' }).status === 0

/** Direct children of a process, from /proc. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')'
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid
      } catch {
        return false
      }
    })
    .map(Number)
}

/** Every descendant of a process. */
const descendants = (pid: number): number[] => childrenOf(pid).flatMap((c) => [c, ...descendants(c)])

/** Whether a process still exists (and is not a zombie waiting to be reaped). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

interface Interrupted {
  readonly code: number | null
  readonly stderr: string
  /** Processes started under the launched one, seen while it ran. */
  readonly processes: readonly number[]
}

/**
 * Starts `command args`, waits until `ready(stderr, out)` holds (mid-run), sends `signal` to the started
 * process only (as `kill <pid>` does), and waits for it to exit.
 */
function interrupt(command: string, args: readonly string[], signal: NodeJS.Signals, ready: (stderr: string) => boolean): Promise<Interrupted> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root })
    let stderr = ''
    let processes: number[] = []
    let sent = false
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (!sent && ready(stderr)) {
        sent = true
        processes = descendants(child.pid as number)
        child.kill(signal)
      }
    })
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, stderr, processes }))
  })
}

const longRun = (out: string) => ['generate', '--model', tinyDit, '--steps', '1000', '--count', '32', '--out', out]
const sampling = (stderr: string) => stderr.includes('sampling...')

describe('signals through the launcher', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s mid-run: exit %i, no process left, no file, no folder the run made', async (signal, status) => {
    const out = join(fresh(), 'made', 'by', 'the-run')
    const r = await interrupt(process.execPath, [launcher, ...longRun(out)], signal, sampling)
    expect(r.code).toBe(status)
    expect(r.stderr).toMatch(/guidekit: Interrupted; no partial files were written\.\n$/)
    expect(r.processes.length).toBeGreaterThan(0)
    expect(r.processes.filter(alive)).toEqual([])
    expect(existsSync(join(out, '..', '..'))).toBe(false)
  })

  it('SIGINT between batches keeps only complete PNGs and no temporary file', async () => {
    const out = fresh()
    const r = await interrupt(process.execPath, [launcher, 'generate', '--model', tinyDit, '--steps', '40', '--count', '60', '--batch-size', '1', '--out', out], 'SIGINT', (stderr) => (stderr.match(/-> /g) ?? []).length >= 2)
    expect(r.code).toBe(130)
    const files = listTree(out)
    expect(files.length).toBeGreaterThanOrEqual(2)
    expect(files.length).toBeLessThan(60)
    expect(files.every((f) => f.endsWith('.png') && !f.startsWith('.'))).toBe(true)
    for (const f of files) expect((await sharp(join(out, f)).metadata()).width).toBe(28)
    expect(r.processes.filter(alive)).toEqual([])
  })

  it('a killed launcher (SIGKILL, nothing forwarded) does not leave its child sampling', async () => {
    const out = join(fresh(), 'killed')
    const r = await interrupt(process.execPath, [launcher, ...longRun(out)], 'SIGKILL', sampling)
    expect(r.code).toBe(null)
    const deadline = Date.now() + 5000
    while (r.processes.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(r.processes.filter(alive)).toEqual([])
    expect(existsSync(out)).toBe(false)
  })

  it.skipIf(!pnpm)('pnpm guidekit: SIGTERM mid-run exits 143 with no process left', async () => {
    const out = join(fresh(), 'pnpm')
    const r = await interrupt('pnpm', ['guidekit', ...longRun(out)], 'SIGTERM', sampling)
    expect(r.code).toBe(143)
    expect(r.processes.filter(alive)).toEqual([])
    expect(existsSync(out)).toBe(false)
  })
})

describe('the launcher as a user runs it', () => {
  it.skipIf(!pnpm)('pnpm guidekit --quiet prints nothing on success and one line on failure, with the exit status', async () => {
    const out = fresh()
    const ok = await runProcess('pnpm', ['guidekit', 'generate', '--model', tinyDit, '--steps', '2', '--out', out, '--quiet'])
    expect(ok).toEqual({ code: 0, stdout: '', stderr: '' })
    const bad = await runProcess('pnpm', ['guidekit', 'generate', '--model', tinyDit, '--steps', '0', '--quiet'])
    expect(bad).toEqual({ code: 2, stdout: '', stderr: 'guidekit: --steps must be an integer from 1 to 1000, got "0".\n' })
  })

  it.skipIf(!pnpm)('the recorded command reproduces the file as typed (pnpm guidekit, --upscale included)', async () => {
    const out = fresh()
    const first = await runProcess('pnpm', ['guidekit', 'generate', '--model', tinyDit, '--class', 'bag', '--steps', '3', '--seed', '4', '--count', '2', '--upscale', '3', '--guidance', 'apg:scale=4,eta=0', '--out', join(out, 'a.png'), '--quiet'])
    expect(first.code).toBe(0)
    const { command } = await recorded(join(out, 'a-5.png'))
    expect(command).toMatch(/^pnpm guidekit generate --model \S+tiny-dit\.onnx --class Bag --guidance apg:scale=4,eta=0 .*--seed 5 --upscale 3$/)
    const again = await runProcess('sh', ['-c', `${command} --out ${join(out, 'again.png')} --quiet`])
    expect(again.code).toBe(0)
    expect(readFileSync(join(out, 'again.png')).equals(readFileSync(join(out, 'a-5.png')))).toBe(true)
    expect((await sharp(join(out, 'again.png')).metadata()).width).toBe(84)
  })

  it('the launcher run by path records a command that runs from anywhere, and exits with the child status', async () => {
    const out = fresh()
    const r = await runProcess(process.execPath, [launcher, 'generate', '--model', tinyDit, '--steps', '2', '--out', join(out, 'p.png'), '--quiet'], { cwd: out, env: { ...process.env, npm_config_user_agent: '' } })
    expect(r.code).toBe(0)
    const { command } = await recorded(join(out, 'p.png'))
    // spawned as `<node path> <launcher path>`: the same words, so the command runs from any folder
    expect(command.startsWith(`${process.execPath} ${launcher} generate `)).toBe(true)
    const again = await runProcess('sh', ['-c', `${command} --out q.png --quiet`], { cwd: out })
    expect(again.code).toBe(0)
    expect(Buffer.compare(await pixels(join(out, 'q.png')), await pixels(join(out, 'p.png')))).toBe(0)
    const missing = await runProcess(process.execPath, [launcher, 'generate', '--model', join(out, 'missing-folder')])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/^guidekit: --model \S+missing-folder: not found\. [^\n]+\n$/)
  })
})
