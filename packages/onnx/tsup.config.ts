import { packageBuild } from '../../tsup.shared'

export default packageBuild(['src/index.ts', 'src/card/index.ts', 'src/graph/index.ts', 'src/web/index.ts'])
