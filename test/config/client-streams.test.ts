/** `cluster.client_streams` (protocol/SECURITY.md SEC6.1): off by default, set from YAML, env or flag, a bad value named. */
import test from 'ava';
import { DEFAULT_OPTIONS, resolveOptions } from '../../src/config/options.js';
import { ConfigError } from '../../src/errors.js';

test('client streams are off by default (SEC6.3: such clients are trusted as nodes)', (t) => {
  t.false(DEFAULT_OPTIONS.clientStreams);
  t.false(resolveOptions().clientStreams);
});

test('YAML, environment and flag turn client streams on, flags winning', (t) => {
  t.true(resolveOptions({ yamlText: 'cluster:\n  client_streams: true\n' }).clientStreams);
  t.true(resolveOptions({ env: { SWARMMQ_CLIENT_STREAMS: 'on' } }).clientStreams);
  t.true(resolveOptions({ flags: { clientStreams: 'true' } }).clientStreams);
  t.false(
    resolveOptions({ yamlText: 'cluster:\n  client_streams: true\n', flags: { clientStreams: 'false' } })
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
