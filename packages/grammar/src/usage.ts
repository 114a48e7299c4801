import { GuidekitError } from '@guidekit/core'

/** A bad spec value: `INVALID_ARGUMENT` with a message that names the value and what is allowed. */
export function usage(message: string): GuidekitError {
  return new GuidekitError('INVALID_ARGUMENT', message, { details: { parameter: 'spec' } })
}
