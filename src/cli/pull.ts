/** `swarmmq pull`: take messages from a destination for a consumer group, print and settle them (D4). */
import { Option, type Command } from 'commander';
import { MAX_PULL_BATCH, MAX_PULL_WAIT_MS } from '../config/defaults.js';
import { MAX_DURATION_MS } from '../config/units.js';
import {
  EXIT_CODES_HELP,
  ExitCode,
  UsageError,
  answerSignal,
  durationArg,
  intArg,
  openClient,
  runAction,
  withConnectionOptions,
  type ConnectionFlags,
} from './connect-flags.js';
import { checkDestination } from '../sdk/wire/text.js';
import { deliveryJson, formatDelivery } from './format.js';

interface PullFlags extends ConnectionFlags {
  group: string;
  batch: number;
  wait: number;
  /** false with --no-ack; undefined (ack) by default. */
  ack?: boolean;
  /** true, or a delay in ms, with --nak. */
  nak?: true | number;
  json?: boolean;
}

export function registerPull(program: Command): void {
  const cmd = program
    .command('pull')
    .description('pull messages from a destination for a consumer group, print them and ack them')
    .argument('<destination>', 'destination to pull from')
    .requiredOption('-g, --group <name>', 'consumer group (made on its first pull; 1-64 of A-Z a-z 0-9 _ -)')
    .option('-b, --batch <n>', `take up to n messages (1-${MAX_PULL_BATCH})`, intArg(1, MAX_PULL_BATCH), 1)
    .addOption(
      new Option('-w, --wait <duration>', 'if none is ready, wait this long for the first (5s; at most 5m)')
        .argParser(durationArg(0, MAX_PULL_WAIT_MS))
        .default(0, 'no wait'),
    )
    .addOption(new Option('--ack', 'acknowledge each message: the group is done with it (the default)'))
    .addOption(
      new Option('--nak [delay]', 'give each back to be delivered again, at once or after the delay (5s)')
        .argParser(durationArg(0, MAX_DURATION_MS))
        .conflicts('ack'),
    )
    .addOption(
      new Option(
        '--no-ack',
        "settle nothing: they are redelivered after the group's ack timeout (a look that leaves them be, almost)",
      ).conflicts('nak'),
    )
    .option('--json', 'one JSON object per message: id, handle, priority, deliveries, headers, payload');
  withConnectionOptions(cmd)
    .addHelpText(
      'after',
      `
Examples:
  swarmmq pull orders --group billing
  swarmmq pull orders -g billing --batch 10 --wait 5s --json
  swarmmq pull orders -g billing --nak 30s
  swarmmq pull orders.DLQ -g inspect --no-ack

Prints each message: "[#n] <destination> id=<id> priority=<p> deliveries=<d>
stored=<time> <size>", its headers indented, and its payload; then settles them
all and says on stderr how many and how. Higher priorities come first (D4.8).
Exit 3 when no message was ready (within --wait).
${EXIT_CODES_HELP}`,
    )
    .action(runAction(pull));
}

/** D2.1. */
const GROUP_NAME = /^[A-Za-z0-9_-]{1,64}$/;

async function pull(destination: string, flags: PullFlags): Promise<void> {
  checkDestination(destination);
  if (!GROUP_NAME.test(flags.group)) {
    throw new UsageError(`--group must be 1-64 of A-Z a-z 0-9 _ -, got ${JSON.stringify(flags.group)}`);
  }
  const client = await openClient(flags, 'swarmmq pull');
  try {
    const msgs = await client.pull(
      destination,
      flags.group,
      { batch: flags.batch, waitMs: flags.wait },
      answerSignal(flags, flags.wait),
    );
    msgs.forEach((m, i) =>
      process.stdout.write(flags.json === true ? `${deliveryJson(m)}\n` : formatDelivery(i + 1, m)),
    );
    if (msgs.length === 0) {
      process.stderr.write(`no message in ${destination} for group ${flags.group}\n`);
      process.exitCode = ExitCode.NoMessage;
      return;
    }
    let how: string;
    if (flags.nak !== undefined) {
      const delayMs = flags.nak === true ? undefined : flags.nak;
      for (const m of msgs) client.settle('NAK', m.handle, delayMs);
      how = delayMs === undefined ? 'given back' : `given back, for redelivery in ${delayMs} ms`;
    } else if (flags.ack !== false) {
      for (const m of msgs) client.settle('ACK', m.handle);
      how = 'acked';
    } else {
      how = 'left in flight (redelivered after the ack timeout)';
    }
    // A refused settle (a handle that expired while we printed) is its -ERR here.
    await client.flush(answerSignal(flags));
    const n = msgs.length;
    process.stderr.write(
      `${n} message${n === 1 ? '' : 's'} from ${destination} (group ${flags.group}): ${how}\n`,
    );
  } finally {
    await client.close();
  }
}
