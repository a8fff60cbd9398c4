import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** The repository ships its own contract and design: nothing in it may point outside it. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
const textFiles = tracked.filter(
  (f) =>
    !f.endsWith('package-lock.json') &&
    /\.(ts|mjs|js|json|md|lua|sql|yml|yaml|sh|example)$|^\.ci\/run$|Dockerfile$/.test(f),
);

describe('the repository is self-contained', () => {
  it('has no reference to the folder beside it', () => {
    // Spelled in two parts so that this file does not match itself.
    const outside = ['..', 'shared'].join('/');
    const offenders = textFiles.filter(
      (f) => existsSync(join(ROOT, f)) && readFileSync(join(ROOT, f), 'utf8').includes(outside),
    );
    expect(offenders).toEqual([]);
  });

  it('has every relative link of its Markdown pointing at a file it contains', () => {
    const broken: string[] = [];
    for (const file of tracked.filter((f) => f.endsWith('.md'))) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (!target || /^[a-z]+:/i.test(target)) continue; // http:, mailto:
        const path = resolve(dirname(join(ROOT, file)), target);
        if (!path.startsWith(ROOT) || !existsSync(path)) broken.push(`${file} → ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
