/** `cluster.client_streams` (protocol/SECURITY.md SEC6.6): on by default, set from YAML, env or flag, a bad value named. */
import test from 'ava';
import { DEFAULT_OPTIONS, resolveOptions } from '../../src/config/options.js';
import { ConfigError } from '../../src/errors.js';

test('client streams are on by default', (t) => {
  t.true(DEFAULT_OPTIONS.clientStreams);
  t.true(resolveOptions().clientStreams);
});

test('YAML, environment and flag turn client streams off, flags winning', (t) => {
  t.false(resolveOptions({ yamlText: 'cluster:\n  client_streams: false\n' }).clientStreams);
  t.false(resolveOptions({ env: { SWARMMQ_CLIENT_STREAMS: 'off' } }).clientStreams);
  t.false(resolveOptions({ flags: { clientStreams: 'false' } }).clientStreams);
  t.true(
    resolveOptions({ yamlText: 'cluster:\n  client_streams: false\n', flags: { clientStreams: 'true' } })
      .clientStreams,
  );
});

test('a value that is not a boolean is refused, naming the key', (t) => {
  const yaml = t.throws(() => resolveOptions({ yamlText: 'cluster:\n  client_streams: maybe\n' }), {
    instanceOf: ConfigError,
  });
  t.is(yaml?.key, 'cluster.client_streams');
  const env = t.throws(() => resolveOptions({ env: { SWARMMQ_CLIENT_STREAMS: 'sometimes' } }), {
    instanceOf: ConfigError,
  });
  t.is(env?.key, 'environment SWARMMQ_CLIENT_STREAMS');
});
