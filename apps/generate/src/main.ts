// The `guidekit` CLI: `generate`, `grid` and `fit-linear-ag`. `main` takes argv and streams, so tests run it
// in-process; bin/guidekit.mjs and cli.ts add the process around it (signals, exit code).
import { parseOptions } from './args.js'
import type { OptionTable, Values } from './args.js'
import type { CliIo, CommandContext } from './commands/common.js'
import { FIT_OPTIONS, fitLinearAg } from './commands/fit-linear-ag.js'
import { GENERATE_OPTIONS, generate } from './commands/generate.js'
import { GRID_OPTIONS, grid } from './commands/grid.js'
import { EXIT, UsageError, classify, oneLine } from './errors.js'
import { FIT_HELP, GENERATE_HELP, GRID_HELP, MAIN_HELP } from './help.js'
import { VERSION } from './metadata.js'
import { progressReporter } from './progress.js'
import type { ProgressReporter } from './progress.js'

export type { CliIo } from './commands/common.js'

interface Command {
  readonly help: string
  readonly options: OptionTable
  run(values: Values, ctx: CommandContext): Promise<number>
}

const COMMANDS: Readonly<Record<string, Command>> = {
  generate: { help: GENERATE_HELP, options: GENERATE_OPTIONS, run: generate },
  grid: { help: GRID_HELP, options: GRID_OPTIONS, run: grid },
  'fit-linear-ag': { help: FIT_HELP, options: FIT_OPTIONS, run: fitLinearAg },
}

const commandList = Object.keys(COMMANDS).join(', ')

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code. Never throws:
 * errors become one line on stderr.
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const signal = io.signal ?? new AbortController().signal
  const [first, ...rest] = argv
  let progress: ProgressReporter | undefined
  try {
    if (first === undefined || first === '-h' || first === '--help') {
      io.stdout.write(`${MAIN_HELP}\n`)
      return first === undefined ? EXIT.usage : EXIT.ok
    }
    if (first === '--version' || first === '-v') {
      io.stdout.write(`${VERSION}\n`)
      return EXIT.ok
    }
    if (first === 'help') {
      const topic = rest[0]
      if (topic === undefined) io.stdout.write(`${MAIN_HELP}\n`)
      else if (COMMANDS[topic]) io.stdout.write(`${COMMANDS[topic].help}\n`)
      else throw new UsageError(`Unknown command ${JSON.stringify(topic)}; commands: ${commandList}.`)
      return EXIT.ok
    }
    const command = COMMANDS[first]
    if (!command) throw new UsageError(`Unknown command ${JSON.stringify(first)}; commands: ${commandList} (see guidekit --help).`)
    const values = parseOptions(first, rest, command.options)
    if (values.help === true) {
      io.stdout.write(`${command.help}\n`)
      return EXIT.ok
    }
    const quiet = values.quiet === true
    progress = progressReporter(io.stderr, { quiet })
    const ctx: CommandContext = {
      io,
      signal,
      progress,
      note: (line) => {
        if (quiet) return
        progress?.clear()
        io.stderr.write(`${oneLine(line)}\n`)
      },
      invocation: io.invocation ?? ['guidekit'],
    }
    return await command.run(values, ctx)
  } catch (error) {
    progress?.clear()
    const { code, message } = classify(error, signal)
    io.stderr.write(`guidekit: ${oneLine(message)}\n`)
    if (io.env?.GUIDEKIT_DEBUG && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`)
    return code
  }
}
