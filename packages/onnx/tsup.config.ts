import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ['src/index.ts', 'src/card/index.ts', 'src/graph/index.ts', 'src/web/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
})
