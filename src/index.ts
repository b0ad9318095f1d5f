/** The swarmmq package's public entry. Every export is named here; nothing else is public. */
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
