import { defineConfig } from 'tsup'

/** The one build every published package uses: ESM for Node 20 with declarations and source maps. */
export function packageBuild(entry: string[]): ReturnType<typeof defineConfig> {
  return defineConfig({ entry, format: ['esm'], dts: true, sourcemap: true, clean: true, target: 'node20' })
}
