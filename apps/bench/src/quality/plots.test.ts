import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { chartSvg } from './plots.js'

describe('chartSvg', () => {
  it('renders series with a legend to a PNG of the requested size', async () => {
    const svg = chartSvg({ title: 'FD <vs> scale', xLabel: 'w', yLabel: 'FD', series: [{ name: 'CFG', points: [[1, 5], [3, 4], [5, 6]] }, { name: 'APG', points: [[3, 3.5]], line: false }] })
    expect(svg).toContain('FD &lt;vs&gt; scale')
    expect(svg.match(/<circle/g)).toHaveLength(4)
    const png = await sharp(Buffer.from(svg)).png().toBuffer()
    const meta = await sharp(png).metadata()
    expect([meta.width, meta.height]).toEqual([760, 460])
  })

  it('copes with no finite points', () => {
    expect(chartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'none', points: [[Number.NaN, 1]] }] })).toContain('</svg>')
  })
})
