// `pnpm test:browser`: builds the playground, serves the static site on localhost (vite preview, with the
// COOP/COEP headers), and drives Debian's Chromium headless (playwright-core, no browser download) through
// the page: load, cancel a run, generate a grid of 3 strategies, compare its pixels with onnxruntime-node,
// download a PNG and reproduce it with the CLI command it records. Prints `N passed, N failed` and saves a
// screenshot of the finished grid to bench-results/playground-grid.png.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseParameters } from '@guidekit/grammar'
import { decode } from 'fast-png'
import { chromium, type Browser, type Page } from 'playwright-core'
import { build, preview, type PreviewServer } from 'vite'
import { formatState, type PlaygroundState } from '../src/state.js'
import { nodeGrid, pixelDifference, repoRoot, runCliCommand } from './node-reference.js'

const appRoot = join(repoRoot, 'apps/playground')
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const screenshot = join(repoRoot, 'bench-results/playground-grid.png')
// Bounded in time whatever happens (a hung page, a starved machine): 30 minutes.
const deadline = setTimeout(() => {
  console.log(`FAIL test:browser: gave up after 30 minutes\n${passed} passed, ${failed + 1} failed`)
  process.exit(1)
}, 1_800_000)

const grid: PlaygroundState = {
  model: 'fashion-dit',
  className: 'Sneaker',
  seed: 0,
  columns: 3,
  steps: 12,
  sampler: 'euler',
  guidance: ['none', 'cfg:scale=3', 'apg:scale=5,eta=0,momentum=-0.5'],
  backend: 'wasm',
}

let passed = 0
let failed = 0
async function check(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body()
    passed++
    console.log(`PASS ${name}`)
  } catch (error) {
    failed++
    console.log(`FAIL ${name}: ${error instanceof Error ? error.message : String(error)}`)
  }
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message)
}

const statusText = (page: Page) => page.locator('#status').innerText()

/** The pixels of every result canvas (the red channel: the images are grayscale), by row then column. */
function canvasPixels(page: Page, rows: number, columns: number): Promise<{ data: number[] }[]> {
  return page.evaluate(
    ([rows, columns]) => {
      const out: { data: number[] }[] = []
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < columns; c++) {
          const canvas = document.querySelector<HTMLCanvasElement>(`canvas[data-row="${r}"][data-column="${c}"]`)
          const rgba = canvas?.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data
          out.push({ data: rgba ? Array.from({ length: rgba.length / 4 }, (_, p) => rgba[4 * p] as number) : [] })
        }
      }
      return out
    },
    [rows, columns] as const,
  )
}

async function main(): Promise<void> {
  const started = performance.now()
  await build({ root: appRoot, logLevel: 'warn' })
  console.log(`built the playground in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  let server: PreviewServer | undefined
  let browser: Browser | undefined
  const downloads = mkdtempSync(join(tmpdir(), 'guidekit-playground-'))
  try {
    server = await preview({ root: appRoot, logLevel: 'warn', preview: { host: '127.0.0.1', port: 4173, strictPort: false } })
    const base = server.resolvedUrls?.local[0]
    assert(base, 'vite preview gave no local URL')
    // Root has no user namespace sandbox; WASM needs no GPU flags.
    const args = process.getuid?.() === 0 ? ['--no-sandbox'] : []
    browser = await chromium.launch({ executablePath, headless: true, args: [...args, '--disable-dev-shm-usage'] })
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } })
    // Generous waits: on a machine shared with training jobs, a click can take many seconds.
    context.setDefaultTimeout(180_000)
    context.setDefaultNavigationTimeout(300_000)
    const page = await context.newPage()
    const problems: string[] = []
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`)
    })
    const gridUrl = `${base}${formatState(grid)}`

    await check('load: the page opens from a shared link, cross-origin isolated, with the link settings', async () => {
      await page.goto(gridUrl)
      assert((await page.title()) === 'guidekit playground', `title is ${await page.title()}`)
      assert(await page.evaluate(() => self.crossOriginIsolated), 'the page is not cross-origin isolated (COOP/COEP headers missing): no WASM threads')
      const values = await page.evaluate(() => ['class', 'steps', 'columns', 'guidance', 'backend'].map((n) => (document.querySelector<HTMLInputElement>(`[name="${n}"]`) as HTMLInputElement).value))
      assert(JSON.stringify(values) === JSON.stringify(['Sneaker', '12', '3', grid.guidance.join('\n'), 'wasm']), `form shows ${JSON.stringify(values)}`)
      assert(problems.length === 0, problems.join('; '))
    })

    await check('bad guidance: a clear error naming the parameter, nothing runs', async () => {
      await page.fill('[name="guidance"]', 'cfg:scael=3')
      await page.click('#generate')
      await page.waitForFunction(() => document.querySelector('#status')?.classList.contains('error'))
      const text = await statusText(page)
      assert(/cfg has no parameter "scael"/.test(text), `status: ${text}`)
      assert((await page.locator('#grid .row').count()) === 0, 'rows were drawn')
    })

    await check('cancel: a long run stops mid-way and the page is ready again', async () => {
      await page.fill('[name="guidance"]', grid.guidance.join('\n'))
      await page.fill('[name="steps"]', '200')
      await page.click('#generate')
      // The first run also downloads and compiles the model and ORT's wasm: minutes on a busy machine.
      await page.waitForFunction(() => /row 1\/3, step [3-9]\/200|row 1\/3, step \d\d\/200/.test(document.querySelector('#status')?.textContent ?? ''), undefined, { timeout: 300_000 })
      assert(await page.isEnabled('#cancel'), 'cancel is disabled during a run')
      await page.click('#cancel')
      await page.waitForFunction(() => /^Cancelled at row 1\/3, step \d+\/200/.test(document.querySelector('#status')?.textContent ?? ''), undefined, { timeout: 30_000 })
      const progress = await page.locator('#progress').evaluate((p) => (p as HTMLProgressElement).value)
      assert(progress > 0 && progress < 0.34, `progress after cancel is ${progress}`)
      assert(await page.isEnabled('#generate'), 'generate stays disabled after cancel')
      assert(await page.isDisabled('#cancel'), 'cancel stays enabled after cancel')
      console.log(`  ${await statusText(page)}`)
    })

    let browserRows: { label: string; stats: string }[] = []
    await check('generate: a grid of 3 strategies with live previews, NFE and ms per image per row', async () => {
      await page.fill('[name="steps"]', String(grid.steps))
      assert((await page.evaluate(() => location.search)) === formatState(grid), 'the form does not hold the grid settings')
      await page.click('#generate')
      // A preview is drawn into row 1's canvases before the row finishes.
      await page.waitForFunction(() => /row 1\/3, step [2-9]\/12/.test(document.querySelector('#status')?.textContent ?? ''), undefined, { timeout: 120_000 })
      const preview = await canvasPixels(page, 1, 1)
      assert(preview[0]?.data.some((v) => v !== 0), 'no preview pixels in row 1 during the run')
      await page.waitForFunction(() => (document.querySelector('#status')?.textContent ?? '').startsWith('Done'), undefined, { timeout: 300_000 })
      browserRows = await page.locator('#grid .row').evaluateAll((rows) => rows.map((r) => ({ label: r.querySelector('h3')?.textContent ?? '', stats: r.querySelector('.stats')?.textContent ?? '' })))
      assert(JSON.stringify(browserRows.map((r) => r.label)) === JSON.stringify(grid.guidance), `rows: ${JSON.stringify(browserRows)}`)
      const nfe = browserRows.map((r) => Number(/NFE ([\d.]+)/.exec(r.stats)?.[1]))
      assert(JSON.stringify(nfe) === JSON.stringify([12, 24, 24]), `NFE per row ${JSON.stringify(nfe)} (expected none 12, cfg 24, apg 24)`)
      assert(browserRows.every((r) => / · \d+ ms\/image$/.test(r.stats)), `stats: ${JSON.stringify(browserRows.map((r) => r.stats))}`)
      const runtime = await page.locator('#runtime').innerText()
      const threads = Math.min(4, cpus().length)
      assert(runtime.includes(`wasm, ${threads} thread`) && runtime.includes('; cross-origin isolated.'), `runtime: ${runtime}`)
      mkdirSync(join(repoRoot, 'bench-results'), { recursive: true })
      await page.screenshot({ path: screenshot, fullPage: true })
      console.log(`  ${await statusText(page)} ${runtime}`)
      console.log(`  screenshot: ${screenshot}`)
      assert(problems.length === 0, problems.join('; '))
    })

    await check('same seed, same image: the page pixels equal onnxruntime-node (the CLI pipeline)', async () => {
      const node = await nodeGrid(grid)
      const page8 = await canvasPixels(page, grid.guidance.length, grid.columns)
      const diff = pixelDifference(page8, node.flatMap((r) => r.images))
      console.log(`  browser WASM vs Node native: max pixel difference ${diff.max}, ${diff.differing}/${diff.total} values differ`)
      console.log('  ms per image (browser WASM | Node onnxruntime-node):')
      node.forEach((row, r) => console.log(`    ${row.label}: ${/(\d+) ms\/image/.exec(browserRows[r]?.stats ?? '')?.[1] ?? '?'} | ${row.msPerImage.toFixed(0)}`))
      assert(diff.max === 0, `pixels differ: max ${diff.max}, ${diff.differing} values`)
    })

    await check('download PNG: CLI metadata, and the recorded command reproduces the image with the CLI', async () => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('canvas[data-row="1"][data-column="2"] + figcaption button')])
      assert(download.suggestedFilename() === 'fashion-dit-sneaker-cfg-scale-3-s2.png', `file name ${download.suggestedFilename()}`)
      const file = join(downloads, download.suggestedFilename())
      await download.saveAs(file)
      const png = decode(readFileSync(file))
      const [cell] = await page.evaluate(() => {
        const canvas = document.querySelector<HTMLCanvasElement>('canvas[data-row="1"][data-column="2"]') as HTMLCanvasElement
        const rgba = canvas.getContext('2d')?.getImageData(0, 0, 28, 28).data ?? new Uint8ClampedArray()
        return [Array.from({ length: 784 }, (_, p) => rgba[4 * p] as number)]
      })
      assert(png.width === 28 && png.height === 28 && png.channels === 1, `PNG is ${png.width}x${png.height}x${png.channels}`)
      assert(pixelDifference([png], [{ data: cell ?? [] }]).max === 0, 'the PNG pixels are not the canvas pixels')
      const { fields, label } = parseParameters(png.text.parameters ?? '')
      assert(label === 'Sneaker' && fields.Guidance === 'cfg:scale=3' && fields.Seed === '2' && fields.Steps === '12' && fields.NFE === '24', `parameters: ${png.text.parameters}`)
      const recorded = JSON.parse(png.text.guidekit ?? '{}') as { command?: string }
      assert(recorded.command === 'guidekit generate --model fashion-dit --class Sneaker --guidance cfg:scale=3 --sampler euler --steps 12 --precision fp32 --seed 2', `command: ${recorded.command}`)
      const cli = await runCliCommand(recorded.command, join(downloads, 'cli.png'))
      assert(cli.text.parameters === png.text.parameters, `the CLI wrote parameters\n${cli.text.parameters}\nthe page wrote\n${png.text.parameters}`)
      // The CLI writes RGB PNGs of the gray image (sharp), the page gray ones: compare one channel.
      const cliGray = { data: Array.from({ length: cli.width * cli.height }, (_, p) => cli.data[p * cli.channels] as number) }
      const diff = pixelDifference([png], [cliGray])
      console.log(`  CLI reproduction (batch 1) vs page (batch 3): max pixel difference ${diff.max}, ${diff.differing}/${diff.total} differ`)
      assert(diff.max === 0, `the CLI image differs by up to ${diff.max} (${diff.differing} pixels)`)
    })

    await check('URL state: editing the form updates the link, and the link restores it', async () => {
      await page.fill('[name="seed"]', '7')
      await page.selectOption('[name="class"]', 'Bag')
      const search = await page.evaluate(() => location.search)
      assert(search.includes('seed=7') && search.includes('class=Bag'), `location.search is ${search}`)
      assert((await page.getAttribute('#share', 'href')) === search, 'the share link is not the URL')
      await page.reload()
      assert((await page.inputValue('[name="seed"]')) === '7' && (await page.inputValue('[name="class"]')) === 'Bag', 'reload lost the settings')
    })
  } finally {
    await browser?.close()
    await server?.close()
    rmSync(downloads, { recursive: true, force: true })
  }
}

try {
  await main()
} catch (error) {
  failed++
  console.log(`FAIL test:browser setup: ${error instanceof Error ? error.message : String(error)}`)
}
clearTimeout(deadline)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
