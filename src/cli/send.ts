/** `swarmmq send`: store a message durably and wait until it is synced (DURABLE.md section 3). */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { MAX_DURATION_MS } from '../config/units.js';
import { ClientError, ClientErrorCode } from '../sdk/wire/errors.js';
import { checkDestination, checkId, encodeHeaders } from '../sdk/wire/text.js';
import type { Client } from '../sdk/wire/connection.js';
import type { Stored } from '../sdk/wire/types.js';
import {
  EXIT_CODES_HELP,
  UsageError,
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
      'add a header (repeatable); travels as a PUB to an existing destination (D3.7), without --priority/--ttl/--delay',
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
  if (fields.length > 0 && [flags.priority, flags.ttl, flags.delay].some((v) => v !== undefined)) {
    throw new UsageError(
      'SEND carries no headers; with --header the message goes as a PUB, which has no --priority, --ttl or --delay',
    );
  }
  // Chosen here, not by the node, so a send that timed out can be repeated safely (D3.4).
  const id = flags.id ?? randomBytes(16).toString('hex');
  const payload = await readPayload(payloadArg);
  const client = await openClient(flags, 'swarmmq send');
  let stored: Stored;
  try {
    stored =
      fields.length > 0
        ? await storeWithHeaders(client, destination, payload, [...fields, ['Nats-Msg-Id', id]], flags)
        : await client.send(
            destination,
            payload,
            {
              id,
              ...(flags.priority === undefined ? {} : { priority: flags.priority }),
              ...(flags.ttl === undefined ? {} : { ttlMs: flags.ttl }),
              ...(flags.delay === undefined ? {} : { delayMs: flags.delay }),
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

/**
 * D3.7: SEND has no header block, but a PUB with headers to an existing
 * destination is stored, its Nats-Msg-Id header is the id, and the reply
 * subject gets `{"stream","seq"[,"duplicate"]}` or `{"error":...}` once synced.
 */
async function storeWithHeaders(
  client: Client,
  destination: string,
  payload: Buffer,
  fields: [string, string][],
  flags: SendFlags,
): Promise<Stored> {
  let reply;
  try {
    reply = await client.request(destination, payload, {
      headers: encodeHeaders(fields),
      signal: answerSignal(flags),
    });
  } catch (err) {
    if (err instanceof ClientError && err.code === ClientErrorCode.NoResponders) {
      throw new ClientError(
        ClientErrorCode.Server,
        `${destination} is not a destination yet: with --header the message is a PUB, which only an existing destination stores (make it with a first send, without --header)`,
      );
    }
    throw err;
  }
  let ack: { seq?: unknown; duplicate?: unknown; error?: { description?: unknown } } | undefined;
  try {
    ack = JSON.parse(reply.payload.toString('utf8')) as typeof ack;
  } catch {
    // checked below
  }
  if (ack?.error !== undefined) {
    throw new ClientError(ClientErrorCode.Server, `not stored: ${String(ack.error.description)}`);
  }
  if (typeof ack?.seq !== 'number') {
    throw new ClientError(
      ClientErrorCode.Protocol,
      `${destination} answered with something other than a store confirmation: ${reply.payload.toString('utf8').slice(0, 80)}`,
    );
  }
  const id = fields[fields.length - 1]![1];
  return { destination, seq: ack.seq, id, duplicate: ack.duplicate === true };
}
