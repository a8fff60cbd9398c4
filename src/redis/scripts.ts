import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** The Lua scripts, loaded once and run by SHA (ioredis falls back to EVAL on NOSCRIPT). */
const SCRIPTS = {
  parleySend: 5,
  parleySeedSeq: 2,
  parleyHistory: 2,
  parleyMarkPersisted: 2,
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

const FILES: Record<ScriptName, string> = {
  parleySend: 'send.lua',
  parleySeedSeq: 'seed-seq.lua',
  parleyHistory: 'history.lua',
  parleyMarkPersisted: 'mark-persisted.lua',
};

export type SendReply = ['OK', number] | ['DUP', string] | ['FORBIDDEN'] | ['NOMEMBERS'] | ['NOSEQ'];
/** [head seq, complete (1/0), counter (-1 when missing), ...message JSON]. */
export type HistoryReply = [number, number, number, ...string[]];

export interface Scripts {
  send(keys: [string, string, string, string, string], args: (string | number)[]): Promise<SendReply>;
  seedSeq(keys: [string, string], pgMaxSeq: number): Promise<number>;
  history(keys: [string, string], mode: 'after' | 'before', bound: number, count: number): Promise<HistoryReply>;
  markPersisted(keys: [string, string], keep: number, seqs: number[]): Promise<number>;
}

/** Defines the scripts on a client (idempotent) and returns typed callers. */
export function createScripts(redis: Redis): Scripts {
  const fns = {} as Record<ScriptName, ScriptFn>;
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    if (!(name in redis)) {
      const lua = readFileSync(new URL(`./scripts/${FILES[name]}`, import.meta.url), 'utf8');
      redis.defineCommand(name, { numberOfKeys: SCRIPTS[name], lua });
    }
    const fn = (redis as unknown as Record<ScriptName, ScriptFn>)[name];
    fns[name] = fn.bind(redis);
  }
  return {
    send: (keys, args) => fns.parleySend(...keys, ...args) as Promise<SendReply>,
    seedSeq: (keys, pgMaxSeq) => fns.parleySeedSeq(...keys, pgMaxSeq) as Promise<number>,
    history: (keys, mode, bound, count) => fns.parleyHistory(...keys, mode, bound, count) as Promise<HistoryReply>,
    markPersisted: (keys, keep, seqs) => fns.parleyMarkPersisted(...keys, keep, ...seqs) as Promise<number>,
  };
}
