/**
 * A SwarmMQ node: options in, data dir checked, client server bound, and a
 * clean stop. The CLI and tests both start nodes through `startNode`.
 */
import { mkdirSync, statSync, accessSync, constants as fsc } from 'node:fs';
import path from 'node:path';
import { StartupError } from './errors.js';
import { createLogger, loggableOptions, type Logger } from './log.js';
import type { NodeOptions } from './config/options.js';
import { ClientServer } from './server/server.js';
import { VERSION } from './version.js';

export interface StartNodeInit {
  options: NodeOptions;
  /** A logger to use instead of one on stdout at the options' level. */
  logger?: Logger;
}

export interface SwarmNode {
  readonly options: NodeOptions;
  readonly server: ClientServer;
  readonly log: Logger;
  /** host:port of the client port. */
  readonly clientAddress: string;
  stop(): Promise<void>;
}

/** Starts a node; rejects with StartupError when the data dir or port is unusable. */
export async function startNode(init: StartNodeInit): Promise<SwarmNode> {
  const options = init.options;
  const log = init.logger ?? createLogger(options.logLevel);
  prepareDataDir(options.dataDir);
  const server = new ClientServer(options, log.child({ component: 'server' }));
  await server.listen();
  const clientAddress = `${server.host}:${server.port}`;
  log.info(
    {
      version: VERSION,
      name: server.name,
      client: clientAddress,
      host: server.host,
      port: server.port,
      options: loggableOptions(options),
    },
    'node started',
  );
  let stopping: Promise<void> | undefined;
  return {
    options,
    server,
    log,
    clientAddress,
    stop() {
      stopping ??= (async () => {
        log.info({ connections: server.connections.size }, 'node stopping');
        await server.close();
        log.info('node stopped');
      })();
      return stopping;
    },
  };
}

/** Creates the data dir if needed and checks that it is a writable directory. */
function prepareDataDir(dir: string): void {
  const abs = path.resolve(dir);
  try {
    mkdirSync(abs, { recursive: true });
    if (!statSync(abs).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(abs, fsc.W_OK | fsc.R_OK | fsc.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new StartupError(
      'DATA_DIR_UNUSABLE',
      `data dir ${abs} is unusable (${code}); set storage.data_dir / --data-dir`,
    );
  }
}
