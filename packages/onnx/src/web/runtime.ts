// onnxruntime-web sessions: WASM (SIMD; threads when the page is cross-origin isolated) or WebGPU when
// the browser has an adapter, falling back to WASM. Each ORT build is imported only when a session needs
// it, so a page downloads one wasm binary: `onnxruntime-web/wasm` (CPU) or `onnxruntime-web/webgpu`
// (WebGPU, with the CPU provider inside for the fallback).
import { GuidekitError, checkNumber } from '@guidekit/core'
import type { InferenceSession } from 'onnxruntime-common'
import type { GraphOptimizationLevel } from '../session.js'

/** The execution providers the browser entry uses. */
export type WebExecutionProvider = 'webgpu' | 'wasm'

/**
 * Session options of the browser entry.
 *
 * @example
 * const options: WebSessionOptions = { executionProviders: ['wasm'], threads: 2 }
 */
export interface WebSessionOptions {
  /**
   * In order of preference; default `['webgpu', 'wasm']`: WebGPU when the browser offers an adapter,
   * else WASM. Pass `['wasm']` for results that match onnxruntime-node on the CPU.
   */
  readonly executionProviders?: readonly WebExecutionProvider[]
  /**
   * WASM threads (`env.wasm.numThreads`); default `min(4, navigator.hardwareConcurrency)` on a
   * cross-origin isolated page, else 1 (threads need SharedArrayBuffer, i.e. COOP/COEP headers). ORT fixes
   * the count when its first session opens; later values are ignored and `runtime.threads` says so.
   */
  readonly threads?: number
  readonly graphOptimizationLevel?: GraphOptimizationLevel
}

/** Which runtime a session ended up on. */
export interface WebRuntime {
  readonly executionProvider: WebExecutionProvider
  /** WASM threads ORT runs with (1 without cross-origin isolation). */
  readonly threads: number
  readonly crossOriginIsolated: boolean
}

/** A session and the runtime it runs on. */
export interface WebSession {
  readonly session: InferenceSession
  readonly runtime: WebRuntime
}

// The subset of onnxruntime-web's module used here (every build has the same API).
interface OrtWeb {
  readonly env: { wasm: { numThreads?: number } }
  readonly InferenceSession: { create(model: Uint8Array, options: InferenceSession.SessionOptions): Promise<InferenceSession> }
}

interface BrowserGlobals {
  readonly crossOriginIsolated?: boolean
  readonly navigator?: { readonly hardwareConcurrency?: number; readonly gpu?: { requestAdapter(): Promise<unknown> } }
}

const browser = globalThis as BrowserGlobals
const builds = new Map<'wasm' | 'webgpu', Promise<OrtWeb>>()
const levels: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'layout', 'all']

/** Imports one ORT build once, setting its thread count before its first session. */
function ortBuild(kind: 'wasm' | 'webgpu', threads: number): Promise<OrtWeb> {
  let build = builds.get(kind)
  if (build === undefined) {
    const load = (kind === 'webgpu' ? import('onnxruntime-web/webgpu') : import('onnxruntime-web/wasm')) as Promise<OrtWeb>
    build = load.then((ort) => {
      ort.env.wasm.numThreads = threads
      return ort
    })
    builds.set(kind, build)
    // A failed import may be retried (e.g. after a network error).
    build.catch(() => builds.delete(kind))
  }
  return build
}

let adapter: Promise<boolean> | undefined
/** Whether the browser gives a WebGPU adapter (asked once per page). */
function hasWebGpu(): Promise<boolean> {
  adapter ??= (async () => {
    const gpu = browser.navigator?.gpu
    if (gpu === undefined) return false
    try {
      return (await gpu.requestAdapter()) != null
    } catch {
      return false
    }
  })()
  return adapter
}

function checkOptions(options: WebSessionOptions): { providers: readonly WebExecutionProvider[]; threads: number } {
  const providers = options.executionProviders ?? ['webgpu', 'wasm']
  if (!Array.isArray(providers) || providers.length === 0 || providers.some((p) => p !== 'webgpu' && p !== 'wasm')) {
    throw new GuidekitError('INVALID_ARGUMENT', `sessionOptions.executionProviders must list 'webgpu' and/or 'wasm' in order of preference, got ${JSON.stringify(providers)}.`, {
      details: { parameter: 'sessionOptions.executionProviders', value: providers },
    })
  }
  if (options.graphOptimizationLevel !== undefined && !levels.includes(options.graphOptimizationLevel)) {
    throw new GuidekitError('INVALID_ARGUMENT', `sessionOptions.graphOptimizationLevel must be one of ${levels.join(', ')}, got ${JSON.stringify(options.graphOptimizationLevel)}.`, {
      details: { parameter: 'sessionOptions.graphOptimizationLevel', value: options.graphOptimizationLevel },
    })
  }
  const isolated = browser.crossOriginIsolated === true
  const fallback = isolated ? Math.min(4, Math.max(1, browser.navigator?.hardwareConcurrency ?? 1)) : 1
  const threads = options.threads === undefined ? fallback : checkNumber('sessionOptions.threads', options.threads, { min: 1, max: 64, integer: true })
  return { providers, threads }
}

/**
 * Opens an onnxruntime-web session for the bytes of a model: WebGPU first when asked for and the browser
 * has an adapter, else (or when WebGPU cannot run the model) WASM. Reports the provider it ended up on.
 * A model neither provider can load is `MODEL_INVALID`.
 *
 * @example
 * const { session, runtime } = await openWebSession(bytes, { executionProviders: ['wasm'] })
 * runtime.executionProvider   // 'wasm'
 */
export async function openWebSession(model: Uint8Array, options: WebSessionOptions = {}): Promise<WebSession> {
  const { providers, threads } = checkOptions(options)
  const gpu = providers.includes('webgpu') && (await hasWebGpu())
  // With a WebGPU adapter, the WebGPU build serves both providers (its wasm has the CPU kernels).
  const ort = await ortBuild(gpu ? 'webgpu' : 'wasm', threads)
  const candidates = providers.filter((p) => p === 'wasm' || gpu)
  const failures: string[] = []
  for (const provider of candidates) {
    const sessionOptions: InferenceSession.SessionOptions = { executionProviders: [provider], logSeverityLevel: 4 }
    if (options.graphOptimizationLevel !== undefined) sessionOptions.graphOptimizationLevel = options.graphOptimizationLevel
    try {
      const session = await ort.InferenceSession.create(model, sessionOptions)
      const runtime: WebRuntime = { executionProvider: provider, threads: ort.env.wasm.numThreads ?? 1, crossOriginIsolated: browser.crossOriginIsolated === true }
      return { session, runtime }
    } catch (cause) {
      failures.push(`${provider}: ${(cause instanceof Error ? cause.message : String(cause)).trim().split('\n')[0] ?? ''}`)
    }
  }
  if (candidates.length === 0) {
    throw new GuidekitError('UNSUPPORTED', `This browser offers no WebGPU adapter and executionProviders is ${JSON.stringify(providers)}; add 'wasm' to fall back to the CPU.`, {
      details: { parameter: 'sessionOptions.executionProviders', value: providers },
    })
  }
  throw new GuidekitError('MODEL_INVALID', `onnxruntime-web could not load a model of ${model.byteLength} bytes (${failures.join('; ')}). Is it a complete ONNX file with operators the ${candidates.join('/')} provider supports?`, {
    details: { model: `${model.byteLength} bytes`, failures },
  })
}
