import { copyFileSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fixture, golden } from '../__fixtures__/helpers.js'
import { clipTokenizerJson, loadClipTokenizer } from './clip-tokenizer.js'

const dir = fixture('sd-miniature', 'tokenizer')

describe('loadClipTokenizer', () => {
  it('builds tokenizer.json from vocab.json + merges.txt and matches the reference CLIP BPE', () => {
    const tokenizer = loadClipTokenizer(dir)
    expect(tokenizer.maxLength).toBe(77)
    expect(tokenizer.vocabSize).toBe(golden.tokenizer.vocabSize)
    expect(tokenizer.bosTokenId).toBe(golden.tokenizer.vocabSize - 2)
    expect(tokenizer.eosTokenId).toBe(golden.tokenizer.vocabSize - 1)
    const prompts = golden.tokenizer.prompts as string[]
    prompts.forEach((p, i) => {
      expect(tokenizer.encode(p).ids).toEqual(golden.tokenizer.ids[i])
    })
    // lowercase, whitespace collapse and the end-of-word suffix, as CLIP
    expect(tokenizer.tokenize('A  CAT')).toEqual(tokenizer.tokenize('a cat'))
    expect(tokenizer.tokenize('a cat').every((t) => t.endsWith('</w>'))).toBe(true)
  })

  it('truncates prompts longer than 77 tokens with a warning', () => {
    const tokenizer = loadClipTokenizer(dir)
    const warnings: string[] = []
    const { ids, truncatedTokens } = tokenizer.encode(golden.tokenizer.longPrompt, { onWarning: (m) => warnings.push(m) })
    expect(ids).toEqual(golden.tokenizer.longIds)
    expect(ids).toHaveLength(77)
    expect(ids[76]).toBe(tokenizer.eosTokenId)
    expect(truncatedTokens).toBeGreaterThan(0)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/75-token limit; the last \d+ token\(s\) were dropped/)
    expect(tokenizer.encode('a photo of a cat', { onWarning: (m) => warnings.push(m) }).truncatedTokens).toBe(0)
    expect(warnings).toHaveLength(1)
  })

  it('prefers tokenizer.json and reads the pad token from tokenizer_config.json', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'guidekit-tok-'))
    const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>
    writeFileSync(join(tmp, 'tokenizer.json'), JSON.stringify(clipTokenizerJson({ vocab, merges: readFileSync(join(dir, 'merges.txt'), 'utf8') })))
    // SD2-style: pad with "!" (id 0) instead of <|endoftext|>
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>
    writeFileSync(join(tmp, 'tokenizer_config.json'), JSON.stringify({ ...config, pad_token: '!' }))
    copyFileSync(join(dir, 'special_tokens_map.json'), join(tmp, 'special_tokens_map.json'))
    const tokenizer = loadClipTokenizer(tmp)
    expect(tokenizer.padTokenId).toBe(0)
    const ids = tokenizer.encode('a photo of a cat').ids
    expect(ids.slice(0, 7)).toEqual((golden.tokenizer.ids[0] as number[]).slice(0, 7))
    expect(ids[7]).toBe(0)
  })

  it('says what is missing when the folder has no tokenizer', () => {
    expect(() => loadClipTokenizer(mkdtempSync(join(tmpdir(), 'guidekit-tok-')))).toThrow(/expected tokenizer.json, or vocab.json and merges.txt/)
  })
})
