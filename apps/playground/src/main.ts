// The page: settings form <-> URL state, a run with progress, live previews, cancel, and PNG downloads.
import { GuidekitError } from '@guidekit/core'
import { fashionWebModel } from '@guidekit/models-fashion/web'
import type { RawImage } from '@guidekit/onnx/web'
import { imageFileName, imageTexts } from './metadata.js'
import { encodePng } from './png.js'
import { planChoice, runGrid, type RowResult } from './run.js'
import { formatState, parseState, splitGuidance, type PlaygroundState } from './state.js'

const $ = <T extends HTMLElement>(selector: string): T => {
  const element = document.querySelector<T>(selector)
  if (!element) throw new Error(`The page has no ${selector}.`)
  return element
}

const form = $<HTMLFormElement>('#settings')
const field = <T extends HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>(name: string): T => {
  const element = form.elements.namedItem(name)
  if (!element) throw new Error(`The form has no field ${name}.`)
  return element as T
}
const fields = {
  model: field<HTMLSelectElement>('model'),
  className: field<HTMLSelectElement>('class'),
  seed: field<HTMLInputElement>('seed'),
  columns: field<HTMLInputElement>('columns'),
  steps: field<HTMLInputElement>('steps'),
  sampler: field<HTMLInputElement>('sampler'),
  guidance: field<HTMLTextAreaElement>('guidance'),
  backend: field<HTMLSelectElement>('backend'),
}
const generate = $<HTMLButtonElement>('#generate')
const cancel = $<HTMLButtonElement>('#cancel')
const share = $<HTMLAnchorElement>('#share')
const progress = $<HTMLProgressElement>('#progress')
const status = $<HTMLParagraphElement>('#status')
const runtimeLine = $<HTMLParagraphElement>('#runtime')
const grid = $<HTMLElement>('#grid')

function say(message: string, kind: 'info' | 'error' = 'info'): void {
  status.textContent = message
  status.classList.toggle('error', kind === 'error')
}

/** Class options of the chosen model's card, keeping the chosen class when the new model has it. */
function fillClasses(model: PlaygroundState['model'], wanted: string): void {
  const names = fashionWebModel(model).card.classes ?? []
  fields.className.replaceChildren(...names.map((n) => new Option(n, n)))
  const match = names.find((n) => n.toLowerCase() === wanted.toLowerCase())
  fields.className.value = match ?? names[0] ?? ''
}

function showState(state: PlaygroundState): void {
  fields.model.value = state.model
  fillClasses(state.model, state.className)
  fields.seed.value = String(state.seed)
  fields.columns.value = String(state.columns)
  fields.steps.value = String(state.steps)
  fields.sampler.value = state.sampler
  fields.guidance.value = state.guidance.join('\n')
  fields.backend.value = state.backend
}

/** The form as a state (through the URL parser, so the form and links accept the same values). */
function readState(): { state: PlaygroundState; problems: string[] } {
  const params = new URLSearchParams({
    model: fields.model.value,
    class: fields.className.value,
    seed: fields.seed.value,
    columns: fields.columns.value,
    steps: fields.steps.value,
    sampler: fields.sampler.value,
    guidance: splitGuidance(fields.guidance.value).join('; '),
    backend: fields.backend.value,
  })
  return parseState(`?${params.toString()}`)
}

function syncUrl(): void {
  const search = formatState(readState().state)
  history.replaceState(null, '', search)
  share.href = search
}

/** Draws an 8-bit image (1 or 3 channels) into a canvas of its size. */
function draw(canvas: HTMLCanvasElement, image: RawImage): void {
  const context = canvas.getContext('2d')
  if (!context) return
  const pixels = context.createImageData(image.width, image.height)
  const { data, channels } = image
  for (let p = 0; p < image.width * image.height; p++) {
    for (let c = 0; c < 3; c++) pixels.data[4 * p + c] = data[p * channels + (channels >= 3 ? c : 0)] as number
    pixels.data[4 * p + 3] = 255
  }
  context.putImageData(pixels, 0, 0)
}

interface RowView {
  readonly canvases: HTMLCanvasElement[]
  readonly buttons: HTMLButtonElement[]
  readonly stats: HTMLParagraphElement
}

function addRow(index: number, label: string, state: PlaygroundState, className: string): RowView {
  const { width, height } = fashionWebModel(state.model).card.image
  const section = document.createElement('section')
  section.className = 'row'
  section.dataset.row = String(index)
  section.setAttribute('aria-labelledby', `row-${index}-title`)
  const head = document.createElement('div')
  const title = document.createElement('h3')
  title.id = `row-${index}-title`
  title.textContent = label
  const stats = document.createElement('p')
  stats.className = 'stats'
  stats.textContent = 'waiting'
  head.append(title, stats)
  const cells = document.createElement('ul')
  cells.className = 'cells'
  const canvases: HTMLCanvasElement[] = []
  const buttons: HTMLButtonElement[] = []
  for (let c = 0; c < state.columns; c++) {
    const seed = state.seed + c
    const canvas = document.createElement('canvas')
    Object.assign(canvas, { width, height })
    canvas.dataset.row = String(index)
    canvas.dataset.column = String(c)
    canvas.setAttribute('role', 'img')
    canvas.setAttribute('aria-label', `${className}, seed ${seed}, ${label}`)
    const button = document.createElement('button')
    button.type = 'button'
    button.disabled = true
    button.textContent = 'Download PNG'
    button.setAttribute('aria-label', `Download PNG: ${className}, seed ${seed}, ${label}`)
    const caption = document.createElement('figcaption')
    caption.append(`seed ${seed}`, document.createElement('br'), button)
    const figure = document.createElement('figure')
    figure.append(canvas, caption)
    const item = document.createElement('li')
    item.append(figure)
    cells.append(item)
    canvases.push(canvas)
    buttons.push(button)
  }
  section.append(head, cells)
  grid.append(section)
  return { canvases, buttons, stats }
}

function download(bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'image/png' }))
  const link = document.createElement('a')
  link.href = url
  link.download = name
  link.click()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

function finishRow(view: RowView, row: RowResult, state: PlaygroundState, className: string, sampler: string): void {
  view.stats.textContent = `NFE ${Math.round(row.nfe * 100) / 100} · ${row.msPerImage.toFixed(0)} ms/image`
  row.images.forEach((image, c) => {
    draw(view.canvases[c] as HTMLCanvasElement, image)
    const button = view.buttons[c] as HTMLButtonElement
    const record = {
      model: state.model,
      rlModel: row.rlModel,
      className,
      guidance: row.label,
      guider: row.guiderName,
      sampler,
      steps: state.steps,
      ...planChoice(state.model),
      seed: state.seed + c,
      width: image.width,
      height: image.height,
      nfe: row.nfe,
    }
    button.disabled = false
    button.onclick = () => {
      try {
        download(encodePng(image, imageTexts(record)), imageFileName(record))
      } catch (error) {
        say(error instanceof Error ? error.message : String(error), 'error')
      }
    }
  })
}

/**
 * Lets the browser paint and handle input. ORT's WASM runs resolve without a macrotask in between, so a
 * run would otherwise hold the main thread from the first step to the last (no previews, no cancel).
 * A message task, unlike requestAnimationFrame, also runs in a background tab.
 */
function yieldToPage(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel()
    channel.port1.onmessage = () => resolve()
    channel.port2.postMessage(null)
  })
}

let controller: AbortController | undefined

async function run(): Promise<void> {
  const { state, problems } = readState()
  if (problems.length > 0) {
    say(problems.join(' '), 'error')
    return
  }
  syncUrl()
  controller = new AbortController()
  generate.disabled = true
  cancel.disabled = false
  grid.replaceChildren()
  grid.setAttribute('aria-busy', 'true')
  progress.value = 0
  const rows: RowView[] = []
  const rowCount = state.guidance.length
  // The form's class select holds the card's names, so state.className is the image label.
  const className = state.className
  let position = 'loading the models'
  say('Starting…')
  try {
    const result = await runGrid(state, controller.signal, {
      onModel(name, runtime) {
        if (runtime === undefined) say(`Loading ${name}…`)
        else runtimeLine.textContent = `onnxruntime-web: ${runtime.executionProvider}${runtime.executionProvider === 'wasm' ? `, ${runtime.threads} thread${runtime.threads === 1 ? '' : 's'}` : ''}; ${runtime.crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated (one thread)'}.`
      },
      onRowStart(r, label) {
        const view = addRow(r, label, state, className)
        view.stats.textContent = 'running'
        rows[r] = view
        position = `row ${r + 1}/${rowCount}`
      },
      onStep(r, step, steps, preview) {
        const view = rows[r] as RowView
        preview.forEach((image, c) => draw(view.canvases[c] as HTMLCanvasElement, image))
        position = `row ${r + 1}/${rowCount}, step ${step}/${steps}`
        progress.value = (r + step / steps) / rowCount
        say(`Sampling ${position} (${state.guidance[r] ?? ''})`)
        return yieldToPage()
      },
      onRowDone(r, row) {
        finishRow(rows[r] as RowView, row, state, className, state.sampler)
      },
    })
    progress.value = 1
    const total = result.rows.reduce((sum, row) => sum + row.msPerImage * result.seeds.length, 0)
    say(`Done: ${result.rows.length} rows × ${result.seeds.length} images of ${result.className} in ${(total / 1000).toFixed(1)} s.`)
  } catch (error) {
    if (GuidekitError.isInstance(error) && error.code === 'ABORTED') say(`Cancelled at ${position}.`)
    else say(error instanceof Error ? error.message : String(error), 'error')
  } finally {
    grid.setAttribute('aria-busy', 'false')
    generate.disabled = false
    cancel.disabled = true
    controller = undefined
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault()
  void run()
})
cancel.addEventListener('click', () => controller?.abort())
form.addEventListener('input', syncUrl)
fields.model.addEventListener('change', () => {
  fillClasses(fields.model.value as PlaygroundState['model'], fields.className.value)
  syncUrl()
})

const initial = parseState(location.search)
showState(initial.state)
syncUrl()
if (initial.problems.length > 0) say(`The link had bad values: ${initial.problems.join(' ')}`, 'error')
