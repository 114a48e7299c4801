// The small grammar of `--guidance` and `--sampler` values (documented in --help and the README):
//
//   list   := spec (';' spec)*
//   spec   := NAME [ '(' params ')' | ':' params ] [ ':' spec ]     the trailing spec is a combinator's inner guider
//   params := param (',' param)*
//   param  := KEY '=' (spec | WORD)                                  a guider-valued parameter (inner=...) takes a spec
//
// Examples: `cfg`, `apg:scale=8,eta=0,momentum=-0.5`, `apg(scale=8, eta=0)`,
// `adaptive(threshold=0.99):apg(scale=8,eta=0)`, `rlg:scale=1.5,inner=cfg:scale=3`, `cfg:scale=4;cfg++:scale=0.6`.
// After `name:` a `key=` starts the parameters; anything else starts the inner guider. Colon-form
// parameters run to the next ':' or the end of the enclosing group, so nest with parentheses when in doubt.
import { GuidekitError } from '@guidekit/core'

/** A grammar error: `INVALID_ARGUMENT` naming what is wrong and where. */
function syntaxError(message: string): GuidekitError {
  return new GuidekitError('INVALID_ARGUMENT', message, { details: { parameter: 'spec' } })
}

/** One parsed `name(params):inner` term, with positions into the source for error messages. */
export interface SpecNode {
  readonly name: string
  readonly params: readonly SpecParam[]
  readonly inner?: SpecNode
  /** The source text of this term. */
  readonly text: string
  readonly at: number
}

export interface SpecParam {
  readonly key: string
  readonly value: string | SpecNode
  readonly at: number
}

type TokenKind = 'word' | '(' | ')' | ':' | ',' | '=' | ';' | 'end'
interface Token {
  readonly kind: TokenKind
  readonly text: string
  readonly at: number
}

const PUNCT = new Set(['(', ')', ':', ',', '=', ';'])

function tokenize(source: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < source.length) {
    const c = source[i] as string
    if (/\s/.test(c)) {
      i++
    } else if (PUNCT.has(c)) {
      tokens.push({ kind: c as TokenKind, text: c, at: i })
      i++
    } else {
      const start = i
      while (i < source.length && !PUNCT.has(source[i] as string) && !/\s/.test(source[i] as string)) i++
      tokens.push({ kind: 'word', text: source.slice(start, i), at: start })
    }
  }
  tokens.push({ kind: 'end', text: 'the end', at: source.length })
  return tokens
}

class Parser {
  private i = 0
  private readonly tokens: Token[]

  constructor(
    private readonly source: string,
    private readonly what: string,
  ) {
    this.tokens = tokenize(source)
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)] as Token
  }

  private next(): Token {
    const t = this.peek()
    if (t.kind !== 'end') this.i++
    return t
  }

  fail(message: string, at: number): never {
    throw syntaxError(`Malformed ${this.what} "${this.source}": ${message} at column ${at + 1}.`)
  }

  private expect(kind: TokenKind, what: string): Token {
    const t = this.next()
    if (t.kind !== kind) this.fail(`expected ${what}, found ${describe(t)}`, t.at)
    return t
  }

  list(): SpecNode[] {
    const out: SpecNode[] = []
    if (this.peek().kind === 'end') this.fail('expected a name (e.g. cfg:scale=3)', 0)
    for (;;) {
      out.push(this.spec())
      const t = this.next()
      if (t.kind === 'end') return out
      if (t.kind !== ';') this.fail(`unexpected ${describe(t)}`, t.at)
      if (this.peek().kind === 'end') return out
    }
  }

  private isParamStart(): boolean {
    return this.peek().kind === 'word' && this.peek(1).kind === '='
  }

  private spec(): SpecNode {
    const nameToken = this.expect('word', 'a name (e.g. cfg, apg, adaptive)')
    const start = nameToken.at
    const params: SpecParam[] = []
    if (this.peek().kind === '(') {
      this.next()
      if (this.peek().kind !== ')') this.params(params)
      this.expect(')', "',' or ')'")
    } else if (this.peek().kind === ':' && this.peek(1).kind === 'word' && this.peek(2).kind === '=') {
      this.next()
      this.params(params)
    }
    let inner: SpecNode | undefined
    if (this.peek().kind === ':') {
      this.next()
      inner = this.spec()
    }
    const end = this.peek().at
    const text = this.source.slice(start, end).trim()
    return inner === undefined ? { name: nameToken.text, params, text, at: start } : { name: nameToken.text, params, inner, text, at: start }
  }

  private params(out: SpecParam[]): void {
    for (;;) {
      if (!this.isParamStart()) {
        const t = this.peek()
        this.fail(t.kind === 'word' ? `expected '=' after "${t.text}"` : `expected key=value, found ${describe(t)}`, t.kind === 'word' ? t.at + t.text.length : t.at)
      }
      const key = this.next()
      this.next() // '='
      const v = this.peek()
      let value: string | SpecNode
      if (v.kind !== 'word') this.fail(`expected a value after "${key.text}=", found ${describe(v)}`, v.at)
      // `inner=` and any value followed by '(' are nested guider specs (inner=cfg:scale=3, inner=cfg(scale=3)).
      if (/^inner$/i.test(key.text) || this.peek(1).kind === '(') value = this.spec()
      else value = this.next().text
      out.push({ key: key.text, value, at: key.at })
      if (this.peek().kind !== ',') return
      this.next()
    }
  }
}

function describe(t: Token): string {
  return t.kind === 'end' ? 'the end' : `'${t.text}'`
}

/** Parses a `;`-separated list of specs. `what` names the option in errors (e.g. `--guidance`). */
export function parseSpecList(source: string, what: string): SpecNode[] {
  return new Parser(source, what).list()
}

/** Parses exactly one spec. */
export function parseSpec(source: string, what: string): SpecNode {
  const list = parseSpecList(source, what)
  if (list.length !== 1) throw syntaxError(`${what} takes one spec, got ${list.length} ("${source}"); use \`guidekit grid\` to compare several.`)
  return list[0] as SpecNode
}
