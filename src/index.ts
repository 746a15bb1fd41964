/**
 * Gangway as a library: `createGateway(config)` for embedding in a Node program, and the
 * configuration helpers behind the CLI.
 */
export { createGateway, type Gateway, type GatewayOptions } from './gateway.js';
export { ConfigError, loadConfigFile, parseConfigText, validateConfig, type ConfigProblem } from './config/load.js';
export { configJsonSchema, configSchema, type GatewayConfig, type GatewayConfigInput } from './config/schema.js';
export { FAILURES, type FailureKind, type FailureKindName } from './faults/taxonomy.js';
export { VERSION } from './version.js';
