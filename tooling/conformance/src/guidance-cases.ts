// The `guidance` section (diffusers guiders). Owned by the guidance packages; until they land every case SKIPs.
import type { ConformanceCase, VectorFile } from './types.js'

export function guidanceCases(file: VectorFile): ConformanceCase[] {
  return (file.guidance ?? []).map((c) => ({ id: c.id, run: () => ({ status: 'skip' as const, note: `method '${c.method}' not implemented yet` }) }))
}
