/**
 * `swarmmq/node`: running a node inside an application (the CLI's `start`
 * does the same). Every export is named here. The client SDK is the
 * package's main entry, src/index.ts.
 */
export { startNode, type SwarmNode, type StartNodeInit } from './node.js';
export {
  resolveOptions,
  DEFAULT_OPTIONS,
  OPTION_SPECS,
  type NodeOptions,
  type OptionSources,
} from './config/options.js';
export {
  ConfigError,
  StartupError,
  ProtocolError,
  CloseReason,
  ProtocolErrorCode,
  DurableError,
  DurableErrorCode,
} from './errors.js';
export { IntegrityError } from './crypto/seal.js';
export { createLogger, type Logger } from './log.js';
export { VERSION } from './version.js';
