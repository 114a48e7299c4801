import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { GuidekitError } from '@guidekit/core'
import { Tokenizer } from '@huggingface/tokenizers'

/** The result of tokenizing one prompt to the fixed CLIP context. */
export interface ClipEncoding {
  /** `maxLength` ids: BOS, the prompt's tokens, EOS, then padding. */
  readonly ids: readonly number[]
  /** Number of prompt tokens dropped because the prompt was longer than the context. */
  readonly truncatedTokens: number
}

/** A CLIP tokenizer with SD's fixed-length padding and truncation. */
export interface ClipTokenizer {
  /** The context length (77 for CLIP). */
  readonly maxLength: number
  readonly bosTokenId: number
  readonly eosTokenId: number
  readonly padTokenId: number
  readonly vocabSize: number
  /** Token strings of a prompt (no special tokens), e.g. `['a</w>', 'cat</w>']`. */
  tokenize(text: string): string[]
  /**
   * Ids padded to `maxLength` (`padding="max_length", truncation=True` as diffusers calls CLIPTokenizer).
   * A longer prompt is truncated; `onWarning` (default `console.warn`) is told how many tokens were dropped.
   */
  encode(text: string, options?: { readonly onWarning?: (message: string) => void }): ClipEncoding
}

// CLIP's pre-tokenization regex, as in openai/CLIP simple_tokenizer.py and the tokenizer.json that
// transformers writes for CLIPTokenizerFast.
const CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"

type Json = Record<string, unknown>

const tokenContent = (t: unknown): string | undefined => (typeof t === 'string' ? t : typeof t === 'object' && t !== null ? ((t as Json).content as string | undefined) : undefined)

/**
 * Builds a `tokenizer.json` (the fast-tokenizer format `@huggingface/tokenizers` loads) for a slow CLIP
 * tokenizer folder that only has `vocab.json` and `merges.txt`, with the components transformers uses for
 * CLIPTokenizerFast: NFC + whitespace collapse + lowercase; CLIP's split regex then byte-level; BPE with
 * the `</w>` end-of-word suffix; RobertaProcessing with `<|startoftext|>` / `<|endoftext|>`.
 *
 * @example
 * const json = clipTokenizerJson({ vocab, merges: readFileSync('merges.txt', 'utf8') })
 */
export function clipTokenizerJson(args: { vocab: Readonly<Record<string, number>>; merges: string | readonly string[]; bosToken?: string; eosToken?: string; unkToken?: string }): Json {
  const { vocab, bosToken = '<|startoftext|>', eosToken = '<|endoftext|>', unkToken = eosToken } = args
  const lines = typeof args.merges === 'string' ? args.merges.split(/\r?\n/) : args.merges
  // merges.txt starts with a "#version: 0.2" header; skip it and blank lines.
  const merges = lines.filter((l) => l.trim() !== '' && !l.startsWith('#version')).map((l) => l.trim())
  const idOf = (token: string): number => {
    const id = vocab[token]
    if (id === undefined) {
      throw new GuidekitError('MODEL_INVALID', `The tokenizer vocabulary has no ${JSON.stringify(token)} token; is this a CLIP tokenizer (vocab.json + merges.txt)?`, {
        details: { token },
      })
    }
    return id
  }
  const special = (content: string) => ({ id: idOf(content), content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true })
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(bosToken), special(eosToken)],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'RobertaProcessing', sep: [eosToken, idOf(eosToken)], cls: [bosToken, idOf(bosToken)], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unkToken,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  }
}

function readJson(path: string): Json {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Json
  } catch (cause) {
    throw new GuidekitError('MODEL_INVALID', `Could not read ${path} as JSON: ${cause instanceof Error ? cause.message : String(cause)}.`, { cause, details: { path } })
  }
}

/**
 * Loads a CLIP tokenizer from a diffusers `tokenizer/` folder: `tokenizer.json` when present, otherwise
 * `vocab.json` + `merges.txt` (the slow format SD exports usually ship), with `tokenizer_config.json` /
 * `special_tokens_map.json` for the special tokens and `model_max_length` (default 77). Fully offline.
 *
 * @example
 * const tokenizer = loadClipTokenizer('stable-diffusion-v1-5/tokenizer')
 * tokenizer.encode('a photo of a cat').ids  // [49406, 320, 1125, 539, 320, 2368, 49407, 49407, ...]
 */
export function loadClipTokenizer(directory: string): ClipTokenizer {
  const config: Json = existsSync(join(directory, 'tokenizer_config.json')) ? readJson(join(directory, 'tokenizer_config.json')) : {}
  const specialMap: Json = existsSync(join(directory, 'special_tokens_map.json')) ? readJson(join(directory, 'special_tokens_map.json')) : {}
  const bosToken = tokenContent(config.bos_token) ?? tokenContent(specialMap.bos_token) ?? '<|startoftext|>'
  const eosToken = tokenContent(config.eos_token) ?? tokenContent(specialMap.eos_token) ?? '<|endoftext|>'
  // SD1.x pads with <|endoftext|>, SD2.x with "!": read it, never assume.
  const padToken = tokenContent(config.pad_token) ?? tokenContent(specialMap.pad_token) ?? eosToken
  const unkToken = tokenContent(config.unk_token) ?? tokenContent(specialMap.unk_token) ?? eosToken
  let json: Json
  if (existsSync(join(directory, 'tokenizer.json'))) {
    json = readJson(join(directory, 'tokenizer.json'))
  } else if (existsSync(join(directory, 'vocab.json')) && existsSync(join(directory, 'merges.txt'))) {
    json = clipTokenizerJson({
      vocab: readJson(join(directory, 'vocab.json')) as Record<string, number>,
      merges: readFileSync(join(directory, 'merges.txt'), 'utf8'),
      bosToken,
      eosToken,
      unkToken,
    })
  } else {
    throw new GuidekitError(
      'MODEL_INVALID',
      `No tokenizer in ${directory}: expected tokenizer.json, or vocab.json and merges.txt (a CLIP tokenizer as diffusers exports it).`,
      { details: { directory } },
    )
  }
  const tokenizer = new Tokenizer(json, { ...config, model_max_length: undefined })
  const idOf = (token: string): number => {
    const id = tokenizer.token_to_id(token)
    if (id === undefined) throw new GuidekitError('MODEL_INVALID', `The tokenizer in ${directory} has no ${JSON.stringify(token)} token.`, { details: { directory, token } })
    return id
  }
  const bosTokenId = idOf(bosToken)
  const eosTokenId = idOf(eosToken)
  const padTokenId = idOf(padToken)
  // Some configs store a huge sentinel (1e30) for "no limit"; CLIP's position table has 77 entries.
  const configured = typeof config.model_max_length === 'number' ? config.model_max_length : 77
  const maxLength = configured > 0 && configured <= 4096 ? configured : 77
  const vocabSize = tokenizer.get_vocab(true).size

  const contentIds = (text: string): number[] => {
    const encoded = tokenizer.encode(text, { add_special_tokens: false })
    return [...encoded.ids]
  }
  return {
    maxLength,
    bosTokenId,
    eosTokenId,
    padTokenId,
    vocabSize,
    tokenize: (text) => tokenizer.tokenize(text, { add_special_tokens: false }),
    encode(text, options = {}) {
      if (typeof text !== 'string') throw new GuidekitError('INVALID_ARGUMENT', `A prompt must be a string, got ${typeof text}.`, { details: { parameter: 'prompt' } })
      const content = contentIds(text)
      const room = maxLength - 2
      const truncatedTokens = Math.max(0, content.length - room)
      if (truncatedTokens > 0) {
        const warn = options.onWarning ?? ((m: string) => console.warn(m))
        warn(`Prompt is ${content.length} tokens, longer than CLIP's ${room}-token limit; the last ${truncatedTokens} token(s) were dropped: ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text)}`)
      }
      const ids = [bosTokenId, ...content.slice(0, room), eosTokenId]
      while (ids.length < maxLength) ids.push(padTokenId)
      return { ids, truncatedTokens }
    },
  }
}
