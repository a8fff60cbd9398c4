import { readFileSync } from 'node:fs';

const INCLUDE = /^--@include ([\w./-]+\.lua)\s*$/gm;

/**
 * A Lua script with its includes inlined: a line `--@include path.lua` (relative to the script)
 * becomes that file, so that helpers several scripts share are written once, as BullMQ's
 * includes are. Redis has no includes of its own: the result is one self-contained script.
 */
export function loadLua(script: URL): string {
  const seen = new Set<string>();
  const expand = (url: URL): string =>
    readFileSync(url, 'utf8').replace(INCLUDE, (_, path: string) => {
      const included = new URL(path, url);
      if (seen.has(included.href)) return ''; // once per script: a helper defines locals
      seen.add(included.href);
      return expand(included).trimEnd();
    });
  return expand(script);
}
