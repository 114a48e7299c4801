// Small SVG line/scatter charts rendered to PNG with sharp (librsvg), so the plots need no browser.
import sharp from 'sharp'

export interface Series {
  readonly name: string
  readonly points: readonly (readonly [number, number])[]
  /** A vertical error bar `[low, high]` per point (same order as `points`), e.g. a 95% interval. */
  readonly intervals?: readonly (readonly [number, number])[]
  /** Draw lines between points (sorted by x); false: markers only. */
  readonly line?: boolean
  /** `'ring'`: large hollow markers, for baselines that other series may sit on. */
  readonly marker?: 'dot' | 'ring'
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f']
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function ticks(lo: number, hi: number, n = 8): number[] {
  const span = hi - lo || 1
  const step = 10 ** Math.floor(Math.log10(span / n))
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * step).find((s) => span / s <= n) ?? step * 10
  const out: number[] = []
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-9; v += nice) out.push(Number(v.toPrecision(6)))
  return out
}

/** An SVG chart of several series. */
export function chartSvg(options: { title: string; xLabel: string; yLabel: string; series: readonly Series[]; width?: number; height?: number }): string {
  const { title, xLabel, yLabel, series, width = 760, height = 460 } = options
  const m = { left: 70, right: 190, top: 40, bottom: 55 }
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  const bars = series.flatMap((s) => (s.intervals ?? []).flatMap((iv, k) => (Number.isFinite(s.points[k]?.[0]) ? [iv[0], iv[1]] : []))).filter(Number.isFinite)
  const xs = all.map((p) => p[0])
  const ys = [...all.map((p) => p[1]), ...bars]
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)]
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)]
  if (!all.length) [x0, x1, y0, y1] = [0, 1, 0, 1]
  const padX = (x1 - x0 || 1) * 0.05
  const padY = (y1 - y0 || 1) * 0.08
  x0 -= padX
  x1 += padX
  y0 -= padY
  y1 += padY
  const W = width - m.left - m.right
  const H = height - m.top - m.bottom
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * W
  const sy = (y: number) => m.top + H - ((y - y0) / (y1 - y0)) * H
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<rect x="${m.left}" y="${m.top}" width="${W}" height="${H}" fill="none" stroke="#333"/>`,
  ]
  for (const t of ticks(x0, x1)) {
    parts.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${m.top}" y2="${m.top + H}" stroke="#eee"/>`, `<text x="${sx(t)}" y="${m.top + H + 16}" text-anchor="middle">${t}</text>`)
  }
  for (const t of ticks(y0, y1)) {
    parts.push(`<line x1="${m.left}" x2="${m.left + W}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`, `<text x="${m.left - 6}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`)
  }
  parts.push(
    `<text x="${m.left + W / 2}" y="${height - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(18 ${m.top + H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  )
  series.forEach((s, i) => {
    const color = palette[i % palette.length] as string
    const pts = [...s.points].filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0])
    s.points.forEach(([x, y], k) => {
      const iv = s.intervals?.[k]
      if (!iv || !Number.isFinite(x) || !Number.isFinite(y) || !Number.isFinite(iv[0]) || !Number.isFinite(iv[1])) return
      const [lo, hi] = [sy(iv[0]), sy(iv[1])]
      parts.push(`<path d="M${sx(x)},${lo} V${hi} M${sx(x) - 5},${lo} h10 M${sx(x) - 5},${hi} h10" stroke="${color}" stroke-width="1.5" fill="none"/>`)
    })
    if (s.line !== false && pts.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${sx(x)},${sy(y)}`).join(' ')}"/>`)
    for (const [x, y] of pts) {
      parts.push(s.marker === 'ring' ? `<circle cx="${sx(x)}" cy="${sy(y)}" r="8" fill="none" stroke="${color}" stroke-width="2.5"/>` : `<circle cx="${sx(x)}" cy="${sy(y)}" r="4" fill="${color}"/>`)
    }
    const ly = m.top + 10 + i * 20
    parts.push(`<rect x="${m.left + W + 12}" y="${ly - 8}" width="12" height="12" fill="${color}"/>`, `<text x="${m.left + W + 30}" y="${ly + 2}">${esc(s.name)}</text>`)
  })
  parts.push('</svg>')
  return parts.join('\n')
}

export async function writeChartPng(path: string, options: Parameters<typeof chartSvg>[0]): Promise<void> {
  await sharp(Buffer.from(chartSvg(options))).png().toFile(path)
}
