#!/usr/bin/env node
/**
 * The `swarmmq` command. Subcommands register themselves here; each has
 * --help. Exit codes: 0 ok, 1 runtime failure (port taken, data dir
 * unusable, a node refused or unreachable), 2 bad configuration or usage,
 * 3 (client commands) nothing came in time.
 */
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { registerBench } from './bench.js';
import { registerCluster } from './cluster.js';
import { registerGen } from './gen.js';
import { registerPub } from './pub.js';
import { registerPull } from './pull.js';
import { registerSend } from './send.js';
import { registerStart } from './start.js';
import { registerSub } from './sub.js';
import { registerStatus } from './status.js';

const program = new Command()
  .name('swarmmq')
  .description('SwarmMQ: a peer-to-peer message broker that speaks the NATS client protocol')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

registerStart(program);
registerCluster(program);
registerGen(program);
registerPub(program);
registerSub(program);
registerSend(program);
registerPull(program);
registerBench(program);
registerStatus(program);

await program.parseAsync(process.argv);
