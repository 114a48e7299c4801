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

  it('draws one error bar per interval and widens the y range to hold it', () => {
    const plain = chartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'AG', points: [[10, 3], [20, 4]] }] })
    const svg = chartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'AG', points: [[10, 3], [20, 4]], intervals: [[2.5, 3.6], [3.8, 9]] }] })
    expect(plain.match(/<path/g)).toBeNull()
    expect(svg.match(/<path/g)).toHaveLength(2)
    // The upper bound 9 is beyond both points, so a tick at 8 appears only with the intervals.
    expect(svg).toContain('>8</text>')
    expect(plain).not.toContain('>8</text>')
  })

  it('copes with no finite points', () => {
    expect(chartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'none', points: [[Number.NaN, 1]] }] })).toContain('</svg>')
  })
})
