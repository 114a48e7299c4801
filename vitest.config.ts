import { defineConfig } from 'vitest/config'

// One root config: every package's tests resolve workspace packages from source
// (the `@guidekit/source` export condition), so tests never wait for a build.
export default defineConfig({
  resolve: { conditions: ['@guidekit/source'] },
  ssr: { resolve: { conditions: ['@guidekit/source'] } },
  test: {
    // CI asks for a machine-readable report next to the usual output (GUIDEKIT_TEST_REPORT=path).
    ...(process.env.GUIDEKIT_TEST_REPORT
      ? { reporters: ['default', 'json'], outputFile: { json: process.env.GUIDEKIT_TEST_REPORT } }
      : {}),
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'tooling/*/src/**/*.test.ts'],
    // Type tests (*.test-d.ts): the public contracts and combinators, checked by tsc.
    typecheck: { enabled: true, include: ['packages/*/src/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
