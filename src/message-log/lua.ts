import { readFileSync } from 'node:fs';

const INCLUDE = /^--@include ([\w-]+\.lua)\s*$/gm;

/**
 * A Lua script of this folder with its includes inlined: a line `--@include name.lua` becomes
 * that file (the helpers several scripts share, read from one place, as BullMQ's includes are).
 * Redis has no includes of its own; the result is one self-contained script.
 */
export function loadLua(name: string): string {
  const read = (file: string) => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
  return read(name).replace(INCLUDE, (_, file: string) => read(file).trimEnd());
}
