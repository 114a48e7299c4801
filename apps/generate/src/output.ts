// Output files: names that differ whenever the settings differ, every check before any folder is made or
// any sampling starts, folders made one level at a time (no recursive-mkdir loop), files written under a
// temporary name and moved into place without replacing an existing file unless --overwrite.
import { createHash, randomBytes } from 'node:crypto'
import { accessSync, constants, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, extname, join, parse, resolve } from 'node:path'
import { UsageError } from './errors.js'

// Linux limits: a file name is at most 255 bytes, a path at most 4095.
const NAME_MAX = 255
const PATH_MAX = 4095

/** A short lowercase ASCII slug of a label for file names. */
export function slug(value: string, max = 40): string {
  const s = value
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
  return s.slice(0, max).replace(/-+$/, '') || 'x'
}

/** 8 hex digits of SHA-256 over the settings that shape the output (a different setting, a different name). */
export function settingsHash(settings: Readonly<Record<string, unknown>>): string {
  return createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 8)
}

/** What kind of thing is at a path, without following a final symlink's target kind for messages. */
function describeKind(path: string): string {
  const s = statSync(path)
  if (s.isDirectory()) return 'a folder'
  if (s.isFile()) return 'a file'
  if (s.isCharacterDevice()) return 'a character device'
  if (s.isBlockDevice()) return 'a block device'
  if (s.isFIFO()) return 'a pipe'
  if (s.isSocket()) return 'a socket'
  return 'not a folder'
}

// Folders made by runs still in progress, for a process that must exit at once (a second Ctrl-C).
const live = new Set<OutputFolders>()

/** Removes every empty folder that runs in progress made (the exit path of a second signal). */
export function removeCreatedFolders(): void {
  for (const folders of live) folders.cleanup()
}

/**
 * The folders an output path needs: checked now (every existing part is a folder we may write to; the
 * names fit the file system), made by {@link OutputFolders.create} right before the first write, and
 * removed again by {@link OutputFolders.cleanup} when the run wrote nothing into them.
 */
export class OutputFolders {
  private readonly missing: string[] = []
  private readonly created: string[] = []

  constructor(folder: string, readonly what: string) {
    let dir = resolve(folder)
    for (;;) {
      if (existsSync(dir)) break
      this.missing.unshift(dir)
      const parent = dirname(dir)
      if (parent === dir) break
      dir = parent
    }
    if (!statSync(dir).isDirectory()) throw new UsageError(`Cannot write ${what}: ${dir} is ${describeKind(dir)}, not a folder.`)
    try {
      accessSync(dir, constants.W_OK | constants.X_OK)
    } catch {
      throw new UsageError(`Cannot write ${what}: ${dir} is not writable (permission denied).`)
    }
    for (const part of [dir, ...this.missing]) {
      if (Buffer.byteLength(basename(part)) > NAME_MAX) throw new UsageError(`Cannot write ${what}: the folder name ${JSON.stringify(basename(part).slice(0, 40))}... is longer than ${NAME_MAX} bytes.`)
    }
  }

  /** Makes the missing folders, one level at a time. */
  create(): void {
    live.add(this)
    for (const dir of this.missing.slice(this.created.length)) {
      try {
        mkdirSync(dir)
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code
        if (code !== 'EEXIST' || !statSync(dir).isDirectory()) {
          throw new UsageError(`Cannot create the folder ${dir} for ${this.what}: ${code === 'ENOENT' ? 'its parent does not accept new folders' : (code ?? String(cause))}.`)
        }
        continue
      }
      this.created.push(dir)
    }
  }

  /** Runs `work` with the folders made first and the empty ones removed again afterwards, even when it fails. */
  async around(work: () => Promise<void>): Promise<void> {
    this.create()
    try {
      await work()
    } finally {
      this.cleanup()
    }
  }

  /** Removes the folders this run made, deepest first, as long as they are empty. */
  cleanup(): void {
    live.delete(this)
    for (const dir of [...this.created].reverse()) {
      try {
        if (readdirSync(dir).length > 0) return
        rmdirSync(dir)
      } catch {
        return
      }
    }
  }
}

/** Checks one output file: a name that fits, not a folder, and not an existing file unless `overwrite`. */
export function checkTarget(path: string, overwrite: boolean): void {
  const full = resolve(path)
  const name = basename(full)
  if (Buffer.byteLength(name) > NAME_MAX) throw new UsageError(`Cannot write ${path}: the file name is ${Buffer.byteLength(name)} bytes, more than ${NAME_MAX}; choose a shorter --out.`)
  if (Buffer.byteLength(full) > PATH_MAX) throw new UsageError(`Cannot write ${path}: the path is longer than ${PATH_MAX} bytes; choose a shorter --out.`)
  if (lstatSync(full, { throwIfNoEntry: false }) === undefined) return
  if (statSync(full, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`Cannot write ${path}: it is a folder.`)
  if (!overwrite) throw new UsageError(`${path} already exists; pass --overwrite to replace it, or choose another --out.`)
}

/**
 * Writes a file atomically: to a short temporary name in the same folder, then moved to `path`. Without
 * `overwrite` the move is a hard link, which fails if `path` exists (another run got there first).
 */
export function writeOutput(path: string, bytes: Uint8Array, overwrite: boolean): void {
  const full = resolve(path)
  const tmp = join(dirname(full), `.guidekit-${process.pid}-${randomBytes(4).toString('hex')}.tmp`)
  try {
    writeFileSync(tmp, bytes, { flag: 'wx' })
    if (overwrite) renameSync(tmp, full)
    else {
      try {
        linkSync(tmp, full)
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${path} appeared while this run was sampling (another run wrote it); pass --overwrite to replace it.`)
        throw cause
      }
    }
  } finally {
    rmSync(tmp, { force: true })
  }
}

/** `--out` for one file of a given extension: the path, or (a folder) the default name inside it. */
export function singleFileTarget(out: string | undefined, extension: string, defaultName: string, flag: string): string {
  if (out === undefined) return join('out', defaultName)
  if (extname(out).toLowerCase() === extension) return out
  if (out.endsWith('/') || (existsSync(out) && statSync(out).isDirectory())) return join(out, defaultName)
  throw new UsageError(`--out for ${flag} must be a ${extension} file or a folder, got ${JSON.stringify(out)}.`)
}

/** `generate --out`: one file per seed. A `.png` path names the file (with `-<seed>` per image when there are several). */
export function imageTargets(out: string, seeds: readonly number[], names: readonly string[]): string[] {
  if (extname(out).toLowerCase() === '.png') {
    if (seeds.length === 1) return [out]
    const p = parse(out)
    return seeds.map((seed) => join(p.dir, `${p.name}-${seed}.png`))
  }
  if (existsSync(out) && !statSync(out).isDirectory()) throw new UsageError(`--out ${out} is ${describeKind(out)}, not a folder; pass a folder or a file name ending in .png.`)
  return names.map((name) => join(out, name))
}
