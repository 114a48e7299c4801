// Extracts every ```ts block of every package README as a runnable module, and checks each README's install
// line against what its snippets import: a snippet may only import node: built-ins and the packages its
// README tells the user to install. Blocks fenced ```ts browser are for web pages (they import a /web entry,
// fetch bundler URLs and need onnxruntime-web): they are counted and left out here; pnpm test:browser runs
// that entry in a real browser.
//   node readme-snippets.mjs <packages dir> <out dir>   -> writes <out>/<package>-<n>.mts, prints the install list
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const [packagesDir, outDir] = process.argv.slice(2)
if (!packagesDir || !outDir) {
  console.error('usage: node readme-snippets.mjs <packages dir> <out dir>')
  process.exit(2)
}
mkdirSync(outDir, { recursive: true })

const problems = []
const installs = new Set()
let count = 0
let browser = 0
for (const name of readdirSync(packagesDir).sort()) {
  let pkg
  try {
    pkg = JSON.parse(readFileSync(join(packagesDir, name, 'package.json'), 'utf8'))
  } catch {
    continue
  }
  if (pkg.private) continue
  const readme = readFileSync(join(packagesDir, name, 'README.md'), 'utf8')
  if (!/ESM[- ]only/i.test(readme)) problems.push(`${pkg.name}: the README does not say the package is ESM-only`)
  // The install line: the first `npm i` / `npm install` in a shell block.
  const shell = [...readme.matchAll(/```(?:bash|sh|shell)\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n')
  const line = shell.split('\n').find((l) => /\bnpm (i|install)\b/.test(l))
  if (!line) {
    problems.push(`${pkg.name}: the README has no npm install line`)
    continue
  }
  const listed = line.replace(/#.*/, '').split(/\s+/).filter((w) => w && !w.startsWith('-') && !w.includes('=') && !['npm', 'i', 'install'].includes(w))
  if (!listed.includes(pkg.name)) problems.push(`${pkg.name}: its install line does not install it: ${line.trim()}`)
  for (const p of listed) installs.add(p)
  browser += [...readme.matchAll(/```ts browser\n/g)].length
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
  blocks.forEach((code, i) => {
    for (const m of code.matchAll(/^\s*import\s[^'"]*?['"]([^'"]+)['"]/gm)) {
      const spec = m[1]
      if (spec.startsWith('node:')) continue
      const root = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]
      if (!listed.includes(root)) problems.push(`${pkg.name} README block ${i + 1} imports ${spec}, which its install line (${line.trim()}) does not install`)
    }
    const file = join(outDir, `${name}-${i + 1}.mts`)
    writeFileSync(file, `// ${pkg.name} README, block ${i + 1}\n${code}\nexport {}\n`)
    count++
  })
}
if (problems.length) {
  for (const p of problems) console.error(`README: ${p}`)
  process.exit(1)
}
console.error(`README snippets: ${count} blocks written to ${outDir}; ${browser} browser blocks (\`\`\`ts browser) left out`)
console.log([...installs].sort().join(' '))
