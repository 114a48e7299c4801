// Shared by the CLI tests: fixture paths, the CLI run in-process or as a process, scratch folders, PNG readers.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import sharp from 'sharp'
import { main } from '../main.js'

const onnxFixtures = fileURLToPath(new URL('../../../../packages/onnx/src/__fixtures__/', import.meta.url))
export const root = fileURLToPath(new URL('../../../../', import.meta.url))
export const launcher = join(root, 'apps/generate/bin/guidekit.mjs')
export const tinyDit = join(onnxFixtures, 'class-conditional', 'tiny-dit.onnx')
export const tinyDitCard = join(onnxFixtures, 'class-conditional', 'tiny-dit.card.json')
export const tinyUnet = join(onnxFixtures, 'class-conditional', 'tiny-unet.onnx')
export const sdMiniature = join(onnxFixtures, 'sd-miniature')
export const attnDit = fileURLToPath(new URL('./tiny-attn-dit.onnx', import.meta.url))
export const shippedModels = join(root, 'packages/models-fashion/models')

/** A scratch folder per test file; `fresh()` gives an empty subfolder. */
export function scratch(prefix: string): { dir: string; fresh: () => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `guidekit-${prefix}-`))
  let n = 0
  return {
    dir,
    fresh() {
      const d = join(dir, `run-${n++}`)
      mkdirSync(d)
      return d
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

export interface Captured {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export function stream(tty = false): { chunks: string[]; stream: { write: (c: string) => number; isTTY: boolean; columns: number } } {
  const chunks: string[] = []
  return { chunks, stream: { write: (c: string) => chunks.push(c), isTTY: tty, columns: 100 } }
}

/** Runs `guidekit <argv>` in this process (the recorded command starts with `guidekit`). */
export async function run(argv: readonly string[], options: { signal?: AbortSignal; tty?: boolean } = {}): Promise<Captured> {
  const out = stream()
  const err = stream(options.tty)
  const code = await main(argv, { stdout: out.stream, stderr: err.stream, ...(options.signal ? { signal: options.signal } : {}) })
  return { code, stdout: out.chunks.join(''), stderr: err.chunks.join('') }
}

/** Runs a command line as a process and collects its output. */
export function runProcess(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Captured> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? root, env: options.env ?? process.env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code: code ?? 128 + (signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 0), stdout, stderr }))
  })
}

/** The raw pixels of a PNG. */
export const pixels = async (file: string): Promise<Buffer> => (await sharp(file).raw().toBuffer({ resolveWithObject: true })).data

/** A PNG's text chunks by keyword. */
export async function pngTexts(file: string): Promise<Record<string, string>> {
  const meta = await sharp(file).metadata()
  return Object.fromEntries((meta.comments ?? []).map((c) => [c.keyword, c.text]))
}

/** The JSON chunk guidekit writes into every PNG. */
export async function recorded(file: string): Promise<{ command: string; [key: string]: unknown }> {
  const text = (await pngTexts(file)).guidekit
  if (text === undefined) throw new Error(`${file} has no guidekit chunk`)
  return JSON.parse(text) as { command: string }
}

/** Every file under a folder (recursively), relative, including hidden ones. */
export function listTree(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true, withFileTypes: false }).map(String).sort()
}

/** Whether the shipped model files are present. */
export const built = (name: string): boolean => existsSync(join(shippedModels, `${name}.onnx`)) && existsSync(join(shippedModels, `${name}.card.json`))

/** A grid row of the --json summary. */
export interface SummaryRow {
  readonly guidance: string
  readonly guider: string
  readonly nfe: number
  readonly imageNfe: readonly number[]
  readonly modelCalls: number
}

/** The --json summary of generate, grid or fit-linear-ag (the fields the tests read). */
export interface Summary {
  readonly [key: string]: unknown
  readonly files: readonly string[]
  readonly labels: readonly string[]
  readonly seeds: readonly number[]
  readonly rows: readonly SummaryRow[]
  readonly nfe: number
  readonly imageNfe: readonly number[]
  readonly seconds: number
  readonly attention: unknown
  readonly precision: { readonly precision: string; readonly file: string; readonly reason: string }
}

/** The --json summary a run printed. */
export const summaryOf = (r: Captured): Summary => JSON.parse(r.stdout) as Summary
