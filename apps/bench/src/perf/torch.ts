// The PyTorch side of bench:perf: torch_dit.py as a long-lived child process, so that PyTorch and guidekit
// trajectories alternate in one run and see the same machine state.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface, type Interface } from 'node:readline'

/** Every mode torch_dit.py knows (see its docstring). */
export const TORCH_MODES = ['fp32-eager', 'bf16-autocast', 'fp32-torchscript', 'bf16-torchscript'] as const

export interface TorchReady {
  readonly torch: string
  readonly modes: readonly string[]
  /** `mode@batch` -> why that mode could not be built. */
  readonly errors: Readonly<Record<string, string>>
  /** fp32 eager output on the fixed check input (x[i] = sin(0.37 i), t = [500, 250], labels [3, 10]). */
  readonly check: readonly number[]
  /** `mode@batch` -> max |final samples - fp32 eager final samples| over one trajectory. */
  readonly trajectoryDiff: Readonly<Record<string, number>>
}

export interface TorchServer {
  readonly ready: TorchReady
  /** Milliseconds of one trajectory of `batch` images in `mode`. */
  run(mode: string, batch: number): Promise<number>
  /** Ends the Python process and resolves once it has exited (its teardown would disturb later timings). */
  close(): Promise<void>
}

/** Why PyTorch cannot be benchmarked here, or undefined when Debian's torch and onnx import. */
export function torchUnavailable(): string | undefined {
  if (!existsSync('/usr/bin/python3')) return '/usr/bin/python3 is missing'
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch, onnx'], { encoding: 'utf8' })
  return r.status === 0 ? undefined : 'PyTorch (Debian python3-torch + python3-onnx) is not installed'
}

export async function startTorch(options: { script: string; onnx: string; planFile: string; batches: readonly number[]; modes: readonly string[]; threads: number; scale: number }): Promise<TorchServer> {
  const child: ChildProcessWithoutNullStreams = spawn('/usr/bin/python3', [
    options.script, '--onnx', options.onnx, '--plan', options.planFile, '--batches', options.batches.join(','),
    '--modes', options.modes.join(','), '--threads', String(options.threads), '--scale', String(options.scale),
  ])
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000)
  })
  const lines: Interface = createInterface({ input: child.stdout })
  const queue: ((line: string) => void)[] = []
  const pending: string[] = []
  lines.on('line', (line) => {
    const next = queue.shift()
    if (next) next(line)
    else pending.push(line)
  })
  const exited = new Promise<never>((_, reject) => child.on('exit', (code) => reject(new Error(`torch_dit.py exited (${code}): ${stderr.trim().split('\n').slice(-2).join(' ')}`))))
  const nextLine = () => Promise.race([new Promise<string>((res) => (pending.length ? res(pending.shift() as string) : queue.push(res))), exited])
  const ready = JSON.parse(await nextLine()) as TorchReady & { ready: boolean }
  return {
    ready,
    async run(mode, batch) {
      child.stdin.write(`run ${mode} ${batch}\n`)
      const reply = JSON.parse(await nextLine()) as { ms?: number; error?: string }
      if (reply.ms === undefined) throw new Error(`torch_dit.py: ${reply.error}`)
      return reply.ms
    },
    close() {
      const gone = exited.then(
        () => undefined,
        () => undefined,
      )
      child.stdin.end('quit\n')
      return gone
    },
  }
}
