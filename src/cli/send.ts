/** `swarmmq send`: store a message durably and wait until it is synced (DURABLE.md section 3). */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { MAX_DURATION_MS } from '../config/units.js';
import { ClientError, ClientErrorCode } from '../sdk/wire/errors.js';
import { checkDestination, checkId, encodeHeaders } from '../sdk/wire/text.js';
import type { Stored } from '../sdk/wire/types.js';
import {
  EXIT_CODES_HELP,
  answerSignal,
  collect,
  durationArg,
  intArg,
  openClient,
  readPayload,
  runAction,
  withConnectionOptions,
  type ConnectionFlags,
} from './connect-flags.js';
import { headerFlags } from './format.js';

interface SendFlags extends ConnectionFlags {
  id?: string;
  priority?: number;
  ttl?: number;
  delay?: number;
  header?: string[];
  json?: boolean;
}

export function registerSend(program: Command): void {
  const cmd = program
    .command('send')
    .description('store a message in a durable destination; exits 0 once the node has synced it')
    .argument('<destination>', 'destination name (made on first send)')
    .argument('[payload]', 'the message body; read from stdin when omitted')
    .option('--id <id>', 'message id, the de-duplication key (default: 32 random hex digits)')
    .option('-p, --priority <1-10>', 'priority, 10 highest (default 5)', intArg(1, 10))
    .option(
      '--ttl <duration>',
      'expire it this long after it is stored (10s, 5m, 2h)',
      durationArg(1, MAX_DURATION_MS),
    )
    .option('--delay <duration>', 'deliver it no sooner than this (5s)', durationArg(0, MAX_DURATION_MS))
    .option(
      '-H, --header <name=value>',
      'add a header (repeatable); the message goes as HSEND (D3.9)',
      collect,
    )
    .option('--json', 'print the confirmation as one JSON object');
  withConnectionOptions(cmd)
    .addHelpText(
      'after',
      `
Examples:
  swarmmq send orders 'first order' --priority 9
  swarmmq send orders --id order-1001 --ttl 1h < order.json
  swarmmq send reminders 'call back' --delay 5m
  swarmmq send orders 'traced' -H Trace-Id=42

Prints "stored in <destination>: seq <n>, id <id>" once the node (in a cluster:
the owner and its live replicas) has synced it; "(duplicate)" when the id was
already stored within the dedup window. If no confirmation comes within
--timeout (exit 3) the message may or may not be stored: send it again with
the same --id, and the node stores it once.
${EXIT_CODES_HELP}`,
    )
    .action(runAction(send));
}

async function send(destination: string, payloadArg: string | undefined, flags: SendFlags): Promise<void> {
  checkDestination(destination);
  if (flags.id !== undefined) checkId(flags.id);
  const fields = headerFlags(flags.header ?? []);
  // Chosen here, not by the node, so a send that timed out can be repeated safely (D3.4).
  const id = flags.id ?? randomBytes(16).toString('hex');
  const payload = await readPayload(payloadArg);
  const client = await openClient(flags, 'swarmmq send');
  let stored: Stored;
  try {
    stored = await client.send(
      destination,
      payload,
      {
        id,
        ...(flags.priority === undefined ? {} : { priority: flags.priority }),
        ...(flags.ttl === undefined ? {} : { ttlMs: flags.ttl }),
        ...(flags.delay === undefined ? {} : { delayMs: flags.delay }),
        ...(fields.length === 0 ? {} : { headers: encodeHeaders(fields) }),
      },
      answerSignal(flags),
    );
  } catch (err) {
    if (err instanceof ClientError && err.code === ClientErrorCode.Timeout) {
      throw new ClientError(
        err.code,
        `${err.message}; it may have been stored: repeat with --id ${id} and it is stored once`,
      );
    }
    throw err;
  } finally {
    await client.close();
  }
  const { seq, duplicate } = stored;
  process.stdout.write(
    flags.json === true
      ? `${JSON.stringify({ destination: stored.destination, seq, id: stored.id, duplicate })}\n`
      : `stored in ${stored.destination}: seq ${seq}, id ${stored.id}${duplicate ? ' (duplicate)' : ''}\n`,
  );
}
