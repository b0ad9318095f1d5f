/** `swarmmq start`: run one node in the foreground until SIGINT or SIGTERM. */
import type { Command } from 'commander';
import { OPTION_SPECS, resolveOptions, type NodeOptions } from '../config/options.js';
import { STOP_HARD_TIMEOUT_MS } from '../config/defaults.js';
import { ConfigError, StartupError } from '../errors.js';

export function registerStart(program: Command): void {
  const cmd = program
    .command('start')
    .description(
      'start a node (every option can also be set in YAML via --config, or as SWARMMQ_* in the environment)',
    )
    .option('-c, --config <file>', 'YAML configuration file (env SWARMMQ_CONFIG)');
  for (const spec of OPTION_SPECS) {
    if (spec.flag === undefined) continue; // secrets: YAML or environment only
    const describe = `${spec.describe} (YAML ${spec.yaml}, env ${spec.env})`;
    if (spec.kind === 'list' || spec.kind === 'peers') {
      cmd.option(`--${spec.flag} <value>`, describe, (v: string, prev: string[] = []) => [...prev, v]);
    } else {
      cmd.option(`--${spec.flag} <value>`, describe);
    }
  }
  cmd.action(async (flags: Record<string, unknown>) => {
    let options: NodeOptions;
    const byKey: Partial<Record<keyof NodeOptions, unknown>> = {};
    for (const spec of OPTION_SPECS) if (spec.flag !== undefined) byKey[spec.key] = flags[camel(spec.flag)];
    const sources = { configFile: flags.config as string | undefined, env: process.env, flags: byKey };
    try {
      options = resolveOptions(sources);
    } catch (err) {
      if (err instanceof ConfigError) fatal(2, `configuration error: ${err.message}`);
      throw err;
    }
    // Signals are handled from before startup, so one that arrives while the
    // node is starting still shuts it down cleanly.
    // Loaded here, not at the top: the client subcommands need none of the node (libp2p takes a second to load).
    const { startNode } = await import('../node.js');
    const starting = startNode({ options });
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        console.error(`swarmmq: second ${sig}: exiting at once`);
        process.exit(1);
      }
      starting
        .then(async (node) => {
          node.log.info({ signal: sig, hardTimeoutMs: STOP_HARD_TIMEOUT_MS }, 'shutting down');
          // OPS1.1: every step of the stop is bounded; this bounds their sum too. Kept
          // referenced: a step stuck on a promise with no handle must not end the process as exit 0.
          setTimeout(() => {
            node.log.error({ ms: STOP_HARD_TIMEOUT_MS }, 'stop took too long: exiting');
            process.exit(1);
          }, STOP_HARD_TIMEOUT_MS);
          await node.stop({ graceful: true });
          process.exit(0);
        })
        .catch((err: unknown) => {
          console.error(`swarmmq: shutdown failed: ${String(err)}`);
          process.exit(1);
        });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // SECURITY.md SEC2.6: SIGHUP reads the same sources again; a bad file keeps the running config.
    process.on('SIGHUP', () => {
      void starting.then((node) => {
        try {
          node.reload(resolveOptions(sources));
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          node.log.error(
            { key: err.key, reason: err.reason },
            'reload refused: configuration error, nothing changed',
          );
        }
      });
    });
    try {
      await starting;
    } catch (err) {
      if (err instanceof StartupError) fatal(1, err.message);
      throw err;
    }
  });
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function fatal(code: number, message: string): never {
  console.error(`swarmmq: ${message}`);
  process.exit(code);
}
