/** The package version, read once from package.json (two levels above dist/src). */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** This package's version (package.json), as nodes also announce it in INFO. */
export const VERSION: string = pkg.version;
