import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { UsageError } from './errors.js'
import { OutputFolders, checkTarget, imageTargets, settingsHash, slug, writeOutput } from './output.js'

const dir = mkdtempSync(join(tmpdir(), 'guidekit-output-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('output files', () => {
  it('writes atomically, refuses to replace a file without overwrite, and leaves no temporary file', () => {
    const target = join(dir, 'a.png')
    writeOutput(target, Uint8Array.of(1, 2, 3), false)
    expect(() => writeOutput(target, Uint8Array.of(9), false)).toThrow(/appeared while this run was sampling/)
    expect([...readFileSync(target)]).toEqual([1, 2, 3])
    writeOutput(target, Uint8Array.of(4, 5), true)
    expect([...readFileSync(target)]).toEqual([4, 5])
    expect(readdirSync(dir)).toEqual(['a.png'])
  })

  it('checks targets before any work: existing files, folders, names too long for the file system', () => {
    expect(() => checkTarget(join(dir, 'a.png'), false)).toThrow(/a\.png already exists; pass --overwrite/)
    expect(() => checkTarget(join(dir, 'a.png'), true)).not.toThrow()
    expect(() => checkTarget(dir, true)).toThrow(/it is a folder/)
    expect(() => checkTarget(join(dir, `${'n'.repeat(300)}.png`), false)).toThrow(/the file name is 304 bytes, more than 255/)
    expect(() => checkTarget(join(dir, 'new.png'), false)).not.toThrow()
  })

  it('makes missing folders one level at a time only when asked, and removes them again when nothing was written', () => {
    const deep = join(dir, 'x', 'y', 'z')
    const folders = new OutputFolders(deep, 'test output')
    expect(existsSync(join(dir, 'x'))).toBe(false)
    folders.create()
    expect(existsSync(deep)).toBe(true)
    folders.cleanup()
    expect(existsSync(join(dir, 'x'))).toBe(false)
    // folders that hold a file stay
    const kept = new OutputFolders(join(dir, 'k', 'l'), 'test output')
    kept.create()
    writeFileSync(join(dir, 'k', 'l', 'f.png'), 'x')
    kept.cleanup()
    expect(existsSync(join(dir, 'k', 'l', 'f.png'))).toBe(true)
  })

  it('fails promptly, with the reason, where folders cannot be made', () => {
    writeFileSync(join(dir, 'plain'), 'x')
    expect(() => new OutputFolders(join(dir, 'plain', 'sub'), 'the images')).toThrow(/plain is a file, not a folder/)
    expect(() => new OutputFolders('/dev/null/sub', 'the images')).toThrow(/\/dev\/null is a character device, not a folder/)
    expect(() => new OutputFolders(join(dir, 'q'.repeat(300), 'sub'), 'the images')).toThrow(/longer than 255 bytes/)
    // /proc refuses new entries, with ENOENT even for root (a recursive mkdir loops on it): one attempt, one
    // clear error; without root the check before any work already refuses it
    const t0 = performance.now()
    const attempt = () => new OutputFolders('/proc/guidekit-forbidden/sub', 'the images').create()
    expect(attempt).toThrow(UsageError)
    expect(attempt).toThrow(/Cannot (create the folder \/proc\/guidekit-forbidden|write the images: \/proc is not writable)/)
    expect(performance.now() - t0).toBeLessThan(1000)
  })

  it('names one file per seed; a file that is not a folder is not an --out folder', () => {
    expect(imageTargets(join(dir, 'one.png'), [7], ['ignored'])).toEqual([join(dir, 'one.png')])
    expect(imageTargets(join(dir, 'b.png'), [7, 8], ['x', 'y'])).toEqual([join(dir, 'b-7.png'), join(dir, 'b-8.png')])
    expect(imageTargets(join(dir, 'folder'), [7], ['n.png'])).toEqual([join(dir, 'folder', 'n.png')])
    expect(() => imageTargets('/dev/null', [7], ['n.png'])).toThrow(/--out \/dev\/null is a character device, not a folder/)
    mkdirSync(join(dir, 'sub'))
    expect(imageTargets(join(dir, 'sub'), [1], ['n.png'])).toEqual([join(dir, 'sub', 'n.png')])
  })

  it('slugs labels and hashes settings so that names differ when settings differ', () => {
    expect(slug('T-shirt/top')).toBe('t-shirt-top')
    expect(slug('adaptive(threshold=0.999):apg(scale=5)')).toBe('adaptive-threshold-0.999-apg-scale-5')
    expect(slug('???')).toBe('x')
    const a = settingsHash({ sampler: 'euler', steps: 30 })
    expect(a).toMatch(/^[0-9a-f]{8}$/)
    expect(settingsHash({ sampler: 'euler', steps: 30 })).toBe(a)
    expect(settingsHash({ sampler: 'ddim', steps: 30 })).not.toBe(a)
    expect(settingsHash({ sampler: 'euler', steps: 31 })).not.toBe(a)
  })
})
