import { defineConfig } from 'vitest/config'

// One root config: every package's tests resolve workspace packages from source
// (the `@guidekit/source` export condition), so tests never wait for a build.
export default defineConfig({
  resolve: { conditions: ['@guidekit/source'] },
  ssr: { resolve: { conditions: ['@guidekit/source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'tooling/*/src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
