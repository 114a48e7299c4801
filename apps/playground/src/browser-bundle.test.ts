// Proves the browser-facing packages bundle for the browser: esbuild bundles each of them for
// `platform: 'browser'`, and any import of a Node built-in (node:fs, path, ...) is a failure naming the
// importer. The Node entry of @guidekit/onnx is bundled too, as the control that the check can fail.
import { builtinModules } from 'node:module'
import { build, type Plugin } from 'esbuild'
import { describe, expect, it } from 'vitest'

const browserEntries = [
  '@guidekit/core',
  '@guidekit/cfg',
  '@guidekit/cfg-pp',
  '@guidekit/apg',
  '@guidekit/adaptive',
  '@guidekit/rlg',
  '@guidekit/grammar',
  '@guidekit/onnx/web',
  '@guidekit/onnx/card',
  '@guidekit/models-fashion/web',
]

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]))

interface Bundle {
  /** Node built-ins imported, as `module <- importer`. */
  readonly nodeImports: string[]
  readonly bytes: number
  /** Bytes of output per package (from esbuild's metafile). */
  readonly byPackage: Map<string, number>
}

async function bundle(specifiers: readonly string[]): Promise<Bundle> {
  const nodeImports: string[] = []
  const detect: Plugin = {
    name: 'node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (!builtins.has(args.path) && !args.path.startsWith('node:')) return undefined
        nodeImports.push(`${args.path} <- ${args.importer.replace(/.*node_modules\//, '').replace(/.*\/(packages|apps)\//, '')}`)
        return { path: args.path, external: true }
      })
    },
  }
  const result = await build({
    stdin: { contents: specifiers.map((s, i) => `export * as m${i} from '${s}'`).join('\n'), resolveDir: import.meta.dirname, loader: 'ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    // The workspace's source condition, then the browser conditions esbuild adds for platform 'browser'.
    conditions: ['@guidekit/source'],
    minify: true,
    // Native addons (onnxruntime-node's, reached by the control) are not JavaScript: leave them out.
    loader: { '.node': 'empty' },
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [detect],
  })
  const byPackage = new Map<string, number>()
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const key = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? /(packages|apps)\/[^/]+/.exec(input)?.[0] ?? input
      byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput)
    }
  }
  return { nodeImports: [...new Set(nodeImports)].sort(), bytes: result.outputFiles.reduce((n, f) => n + f.contents.byteLength, 0), byPackage }
}

describe('browser bundle', () => {
  it('core, the guidance packages, grammar, onnx/web, onnx/card and models-fashion/web import no Node built-in', async () => {
    const result = await bundle(browserEntries)
    const sizes = [...result.byPackage].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / 1024).toFixed(1)} KiB`)
    console.log(`browser bundle of ${browserEntries.length} entries: ${(result.bytes / 1024).toFixed(1)} KiB minified (${sizes.join(', ')})`)
    expect(result.nodeImports).toEqual([])
    expect(result.byPackage.has('onnxruntime-web')).toBe(true)
  })

  it.each(browserEntries)('%s alone bundles for the browser', async (entry) => {
    expect((await bundle([entry])).nodeImports).toEqual([])
  })

  it('the check fails where it should: the Node entry of @guidekit/onnx imports Node built-ins', async () => {
    const result = await bundle(['@guidekit/onnx'])
    expect(result.nodeImports).toEqual(expect.arrayContaining([expect.stringMatching(/^node:fs <- onnx\/src\//)]))
  })
})
