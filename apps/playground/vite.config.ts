import { defaultClientConditions, defineConfig } from 'vite'

// Cross-origin isolation (COOP + COEP) gives the page SharedArrayBuffer, which onnxruntime-web needs for
// WASM threads; without it ORT runs on one thread.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
}

export default defineConfig({
  // Relative asset URLs: the built site works from any folder of a static host.
  base: './',
  resolve: {
    // Workspace packages from source (as in the tests), so the dev server needs no package builds.
    conditions: ['@guidekit/source', ...defaultClientConditions],
  },
  // Pre-bundling would move onnxruntime-web to node_modules/.vite/deps, where the wasm files it finds
  // next to itself (new URL('*.wasm', import.meta.url)) do not exist.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  server: { headers: isolation },
  preview: { headers: isolation },
  build: {
    target: 'es2022',
    // The model files (10-17 MB) and ORT's wasm are fetched on demand; do not inline anything large.
    assetsInlineLimit: 4096,
    chunkSizeWarningLimit: 1024,
    // Rolldown's notes on slow plugins measure the machine's load, not the build.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
})
