// The `comfy_samplers` section (ComfyUI samplers and nodes). Owned by the guidance packages; until they land every case SKIPs.
import type { ConformanceCase, VectorFile } from './types.js'

export function comfyCases(file: VectorFile): ConformanceCase[] {
  return (file.comfy_samplers ?? []).map((c) => ({ id: c.id, run: () => ({ status: 'skip' as const, note: `method '${c.method}' not implemented yet` }) }))
}
