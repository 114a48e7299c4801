// Loading class-conditional models and denoisers in a browser: model bytes from a URL or a buffer, the card
// as an object or fetched from a URL, sessions from onnxruntime-web. The checks are the Node loader's.
import { GuidekitError } from '@guidekit/core'
import { parseGeneratorCard } from '../card/parse.js'
import type { GeneratorCard } from '../card/schema.js'
import type { ClassConditionalDenoiser, ClassConditionalDenoiserOptions } from '../class-conditional/denoiser.js'
import { isClassConditionalModel, type ClassConditionalModel } from '../class-conditional/model.js'
import { denoiserFromSources, openCheckedModel } from '../internal/loading.js'
import { openWebSession, type WebRuntime, type WebSessionOptions } from './runtime.js'

/** A URL (absolute, or relative to the page) or the bytes of a file. */
export type WebModelBytes = string | URL | ArrayBuffer | Uint8Array

/**
 * A model file in a browser: the `.onnx` file as a URL or bytes, with its card as an object (e.g. a JSON
 * import) or a URL fetched as JSON. `name` (default: the file name or the card's name) appears in messages.
 */
export interface WebModelFile {
  readonly model: WebModelBytes
  readonly card: GeneratorCard | Record<string, unknown> | string | URL
  readonly name?: string
}

/** A model for a denoiser: a file to load, or a model loaded already (shared between denoisers). */
export type WebModelSource = WebModelFile | ClassConditionalModel

/** A model loaded by the browser entry: a {@link ClassConditionalModel} that says which runtime it uses. */
export interface WebClassConditionalModel extends ClassConditionalModel {
  readonly runtime: WebRuntime
}

/** Options of the browser {@link loadClassConditionalModel}. */
export interface WebLoadModelOptions {
  readonly sessionOptions?: WebSessionOptions
  /** Session inputs the caller feeds through the denoiser's `onRun` hook (e.g. DraftAttention's). */
  readonly extraInputs?: readonly string[]
  /** Cancels the downloads. */
  readonly signal?: AbortSignal
}

const isUrl = (v: unknown): v is string | URL => typeof v === 'string' || v instanceof URL

async function download(url: string | URL, what: string, signal: AbortSignal | undefined): Promise<Response> {
  let response: Response
  try {
    response = await fetch(url, signal ? { signal } : {})
  } catch (cause) {
    if (signal?.aborted) throw new GuidekitError('ABORTED', `Loading ${what} was aborted.`, { cause: signal.reason })
    throw new GuidekitError('IO_ERROR', `Could not fetch ${what} from ${String(url)}: ${cause instanceof Error ? cause.message : String(cause)}. Check the URL and that the server allows this origin (CORS/CORP).`, {
      cause,
      details: { url: String(url) },
    })
  }
  if (!response.ok) {
    throw new GuidekitError(response.status === 404 ? 'MODEL_NOT_FOUND' : 'IO_ERROR', `Fetching ${what} from ${String(url)} failed: HTTP ${response.status} ${response.statusText}. Check the URL.`, {
      details: { url: String(url), status: response.status },
    })
  }
  // A dev server's single-page fallback answers a missing file with index.html and status 200.
  if ((response.headers.get('content-type') ?? '').includes('text/html')) {
    throw new GuidekitError('MODEL_NOT_FOUND', `${String(url)} is an HTML page, not ${what}: the file is probably missing and the server answered with its fallback page. Check the URL.`, {
      details: { url: String(url) },
    })
  }
  return response
}

async function fetchCard(url: string | URL, signal: AbortSignal | undefined): Promise<unknown> {
  const text = await (await download(url, 'a model card', signal)).text()
  try {
    return JSON.parse(text)
  } catch (cause) {
    throw new GuidekitError('MODEL_INVALID', `Model card ${String(url)} is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}. Fix the file or regenerate it with the training tooling.`, {
      cause,
      details: { url: String(url) },
    })
  }
}

const fetchBytes = async (url: string | URL, signal: AbortSignal | undefined): Promise<Uint8Array> =>
  new Uint8Array(await (await download(url, 'an ONNX model', signal)).arrayBuffer())

const fileName = (url: string | URL): string => String(url).split(/[?#]/)[0]?.split('/').pop() || String(url)

/**
 * Loads a class-conditional ONNX model in a browser with onnxruntime-web and checks it against its card
 * before it is used, exactly as the Node loader does: the card's fields, every input and output it
 * lists, the sample / timestep / class / prediction roles and the class embedding range. The card is
 * checked before the model is downloaded. `runtime` says which execution provider the session runs on.
 *
 * @example
 * import card from '@guidekit/models-fashion/models/fashion-dit.card.json'
 * const model = await loadClassConditionalModel({ model: new URL('./fashion-dit.onnx', import.meta.url), card }, { sessionOptions: { executionProviders: ['wasm'] } })
 * model.runtime   // { executionProvider: 'wasm', threads: 2, crossOriginIsolated: true }
 */
export async function loadClassConditionalModel(source: WebModelFile, options: WebLoadModelOptions = {}): Promise<WebClassConditionalModel> {
  if (typeof source !== 'object' || source === null || !('model' in source) || !('card' in source)) {
    throw new GuidekitError('INVALID_ARGUMENT', 'A browser model source is { model, card }: model as a URL, ArrayBuffer or Uint8Array, card as an object or a URL of its JSON; or a loaded model.', {
      details: { parameter: 'model' },
    })
  }
  const { model, card } = source
  const { signal } = options
  let json: unknown = card
  let where = `the card given for ${source.name ?? (isUrl(model) ? fileName(model) : 'the model')}`
  if (isUrl(card)) {
    json = await fetchCard(card, signal)
    where = String(card)
  }
  // The whole card is checked before the model is downloaded.
  const parsed = parseGeneratorCard(json, where)
  const name = source.name ?? (isUrl(model) ? fileName(model) : parsed.name)
  let bytes: Uint8Array
  if (isUrl(model)) bytes = await fetchBytes(model, signal)
  else if (model instanceof Uint8Array) bytes = model
  else if (model instanceof ArrayBuffer) bytes = new Uint8Array(model)
  else throw new GuidekitError('INVALID_ARGUMENT', 'model must be a URL, an ArrayBuffer or a Uint8Array with the .onnx file contents.', { details: { parameter: 'model' } })
  // Keep a downloaded file only until the session is checked; a later modelBytes() fetches it again.
  let held: Uint8Array | undefined = bytes
  const readBytes = (): Promise<Uint8Array> => (held ? Promise.resolve(held) : isUrl(model) ? fetchBytes(model, undefined) : Promise.resolve(bytes))
  let runtime: WebRuntime | undefined
  const open = async () => {
    const opened = await openWebSession(bytes, options.sessionOptions)
    runtime = opened.runtime
    return opened.session
  }
  try {
    const loaded = await openCheckedModel({ card: parsed, where, name, open, readBytes, extraInputs: options.extraInputs })
    return { ...loaded, runtime: runtime as WebRuntime }
  } finally {
    if (isUrl(model)) held = undefined
  }
}

/** Options of the browser {@link loadClassConditionalDenoiser}: models as sources (URLs, buffers or loaded models). */
export interface WebLoadDenoiserOptions extends Omit<ClassConditionalDenoiserOptions, 'model' | 'models' | 'onDispose'> {
  readonly model?: WebModelSource
  readonly models?: Readonly<Record<string, WebModelSource>>
  readonly sessionOptions?: WebSessionOptions
  readonly signal?: AbortSignal
}

/**
 * Loads the models in a browser and returns a {@link ClassConditionalDenoiser} over them, the same API as
 * the Node entry's; `dispose()` releases the sessions it opened (not models passed in loaded).
 *
 * @example
 * const denoiser = await loadClassConditionalDenoiser({ model: { model: ditUrl, card: ditCard }, classes: [7, 7] })
 * const result = await sample({ denoiser, guider: cfg({ scale: 3 }), sampler: euler(), plan: planFromCard(denoiser.card, { steps: 30 }), shape: [2, 1, 28, 28], seed: 0 })
 */
export async function loadClassConditionalDenoiser(options: WebLoadDenoiserOptions): Promise<ClassConditionalDenoiser> {
  const { model, models, sessionOptions, signal, ...rest } = options
  const loadOptions: WebLoadModelOptions = { ...(sessionOptions ? { sessionOptions } : {}), ...(signal ? { signal } : {}) }
  return denoiserFromSources(model, models, rest, (source: WebModelSource) => (isClassConditionalModel(source) ? Promise.resolve(source) : loadClassConditionalModel(source, loadOptions)), '{ model: URL or bytes, card }')
}
