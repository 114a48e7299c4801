// Model files on disk: where a card and its ONNX file are, reading cards, and keeping `onnx.file` inside
// the card's folder.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path'
import { GuidekitError } from '@guidekit/core'
import { parseModelCard } from '../card/parse.js'
import type { AnyModelCard } from '../card/schema.js'

/** Reads and validates a `<name>.card.json` file (`MODEL_NOT_FOUND` / `MODEL_INVALID` naming the file). */
export function readModelCard(path: string): AnyModelCard {
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new GuidekitError('MODEL_NOT_FOUND', `Model card not found: ${path}. guidekit models ship a <name>.card.json next to <name>.onnx; pass { path, card } to supply one.`, {
      details: { path },
    })
  }
  let json: unknown
  try {
    json = JSON.parse(readFileSync(path, 'utf8'))
  } catch (cause) {
    throw new GuidekitError('MODEL_INVALID', `Model card ${path} is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}. Fix the file or regenerate it with the training tooling.`, {
      cause,
      details: { path },
    })
  }
  return parseModelCard(json, path)
}

/**
 * The ONNX file a card names, resolved inside the card's folder: `onnx.file` is a file name or a relative
 * path that stays in that folder (no absolute paths, no `..` out of it), so a card cannot point guidekit at
 * arbitrary files. Pass `{ path, card }` to use an ONNX file elsewhere.
 */
export function onnxFileOf(cardPath: string, file: string): string {
  const folder = dirname(resolve(cardPath))
  const target = resolve(folder, file)
  const rel = relative(folder, target)
  if (isAbsolute(file) || rel.startsWith('..') || isAbsolute(rel) || rel === '') {
    throw new GuidekitError('MODEL_INVALID', `Model card ${cardPath}: 'onnx.file' is ${JSON.stringify(file)}, which is outside the card's folder. Name a file next to the card (e.g. "${basename(cardPath).replace(/\.card\.json$/, '.onnx')}"), or pass the ONNX path explicitly as { path, card }.`, {
      details: { card: cardPath, field: 'onnx.file', value: file },
    })
  }
  return target
}

/**
 * Where a model's card and ONNX file are: `x.onnx` -> card `x.card.json`; `x.card.json` -> its `onnx.file`,
 * inside the card's folder.
 */
export function locateModel(path: string): { onnxPath: string; cardPath: string; card?: AnyModelCard } {
  if (path.endsWith('.card.json')) {
    const card = readModelCard(path)
    if (card.kind === 'text-to-image') return { onnxPath: onnxFileOf(path, card.folder), cardPath: path, card }
    return { onnxPath: onnxFileOf(path, card.onnx.file), cardPath: path, card }
  }
  const base = path.endsWith('.onnx') ? path.slice(0, -'.onnx'.length) : path
  return { onnxPath: path.endsWith('.onnx') ? path : `${base}.onnx`, cardPath: `${base}.card.json` }
}
