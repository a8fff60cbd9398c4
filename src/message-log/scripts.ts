import { isRedirection, pipelineBySlot, refreshSlots, type RedisClient } from '../redis/client.js';
import { CHAT_PAYLOAD, type LogKeys } from './keys.js';
import { loadLua } from './lua.js';
import type {
  AppendInput,
  AppendReply,
  ChangeInput,
  ChangeReply,
  ChangesSinceReply,
  HistoryReply,
  LogSettings,
  PersistedChat,
} from './script-io.js';

/** The answers the append and change scripts share: the checks they make before writing. */
type Refusal =
  { kind: 'rate-limited'; retryAfterMs: number } | { kind: 'forbidden' } | { kind: 'no-members' } | { kind: 'no-seq' };

function refusal(reply: readonly unknown[]): Refusal {
  switch (reply[0]) {
    case 'LIMITED':
      return { kind: 'rate-limited', retryAfterMs: reply[1] as number };
    case 'FORBIDDEN':
      return { kind: 'forbidden' };
    case 'NOMEMBERS':
      return { kind: 'no-members' };
    case 'NOSEQ':
      return { kind: 'no-seq' };
    default:
      throw new Error(`unexpected script reply ${String(reply[0])}`);
  }
}

type Raw = (...args: (string | number)[]) => Promise<unknown>;
type Queued = Record<ScriptName, (...args: (string | number)[]) => unknown>;

/** name → [file, number of keys]. Loaded once per client and run by SHA (EVAL on NOSCRIPT). */
const SCRIPTS = {
  logAppend: ['append.lua', 9],
  logChange: ['change.lua', 11],
  logReadMessage: ['read-message.lua', 3],
  logChangesSince: ['changes-since.lua', 6],
  logReadPending: ['read-pending.lua', 5],
  logMarkPersisted: ['mark-persisted.lua', 6],
  logClaim: ['claim.lua', 1],
  logHistory: ['history.lua', 2],
  logArchiveTrim: ['archive-trim.lua', 8],
  logSeedSeq: ['seed-seq.lua', 4],
  logRaiseSeq: ['raise-seq.lua', 3],
  logRefreshCopies: ['refresh-copies.lua', 4],
} as const;

type ScriptName = keyof typeof SCRIPTS;

/**
 * The message log's scripts with named fields: callers never build KEYS or ARGV by position, and
 * each script's marshalling is written once, here, beside the script's own header.
 */
export function createLogScripts(redis: RedisClient, keys: LogKeys, settings: LogSettings) {
  const fn = {} as Record<ScriptName, Raw>;
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    const [file, numberOfKeys] = SCRIPTS[name];
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua: loadLua(file) });
    fn[name] = (redis as unknown as Record<ScriptName, Raw>)[name].bind(redis);
  }

  /**
   * Runs one script for each of `calls` (each naming one chat's keys, its first key first) in one
   * pipeline per node (one write to Redis, one read back), where a worker's batch would otherwise
   * cost a round trip per chat; rejects on the first error.
   */
  async function many<T>(
    name: ScriptName,
    calls: readonly (string | number)[][],
    parse: (reply: unknown) => T,
  ): Promise<T[]> {
    const replies = await pipelineBySlot(
      redis,
      calls,
      (args) => String(args[0]),
      (pipeline, args) => {
        const queue = (pipeline as unknown as Queued)[name];
        if (!queue) throw new Error(`script ${name} is not defined on this connection`);
        queue.apply(pipeline, args);
        return 1;
      },
    );
    return replies.map(([reply]) => {
      if (!reply) throw new Error(`script ${name}: no reply`);
      if (reply[0]) throw reply[0];
      return parse(reply[1]);
    });
  }

  /**
   * Runs a script that writes what is acked (an append, a change): with `waitReplicas`, followed
   * in the same pipeline by WAIT, so that its reply comes once the replicas hold the write (or the
   * wait timed out: the master's copy alone, as without replicas). WAIT has no key: in the
   * pipeline it goes to the node of the script's slot.
   */
  async function acked(name: 'logAppend' | 'logChange', args: (string | number)[]): Promise<unknown> {
    if (settings.waitReplicas === 0) return fn[name](...args);
    const run = async () => {
      const pipeline = redis.pipeline();
      (pipeline as unknown as Queued)[name].apply(pipeline, args);
      pipeline.wait(settings.waitReplicas, settings.waitTimeoutMs);
      const [script] = ((await pipeline.exec()) ?? []) as [Error | null, unknown][];
      if (!script) throw new Error(`script ${name}: no reply`);
      return script;
    };
    let [err, reply] = await run();
    // Redirected (the slot's master changed): the script did not run; once more on the new map.
    if (isRedirection(err)) {
      await refreshSlots(redis);
      [err, reply] = await run();
    }
    if (err) throw err;
    return reply;
  }

  const readPendingArgs = (chatId: string, max: number, releaseIfNone: boolean) => [
    keys.pending(chatId),
    keys.active(chatId),
    keys.ticket(chatId),
    keys.changed(chatId),
    keys.pendingChanges(chatId),
    max,
    releaseIfNone ? '1' : '0',
  ];
  const parsePending = (reply: unknown) => {
    const [found, orphans, changes] = reply as [string[], string[], string[]];
    return { found, orphans, changes };
  };
  const markArgs = (c: PersistedChat, ticket: 'keep' | 'leave') => [
    keys.pending(c.chatId),
    keys.active(c.chatId),
    keys.ticket(c.chatId),
    keys.changed(c.chatId),
    keys.pendingChanges(c.chatId),
    keys.seq(c.chatId),
    settings.listMax,
    ticket,
    settings.ticketMs,
    c.seqs.length,
    ...c.seqs,
    ...(c.changes ?? []).flatMap((ch) => [ch.seq, ch.rev]),
  ];
  const parseMark = (reply: unknown) => {
    const [trimmed, more, persistedSeq] = reply as [number, number, number];
    return { trimmed, more: more === 1, persistedSeq };
  };

  return {
    async append(i: AppendInput): Promise<AppendReply> {
      const { chatId } = i;
      const reply = (await acked('logAppend', [
        keys.seq(chatId),
        keys.active(chatId),
        keys.members(chatId),
        i.clientMsgId ? keys.idempotency(chatId, i.senderId, i.clientMsgId) : keys.seq(chatId),
        keys.pending(chatId),
        keys.reads(chatId),
        keys.ticket(chatId),
        i.bucket ? keys.rateLimit(i.senderId) : keys.seq(chatId),
        keys.rev(chatId),
        i.senderId,
        i.template.head,
        i.template.middle,
        keys.channel(chatId),
        CHAT_PAYLOAD.message,
        i.clientMsgId ? '1' : '0',
        settings.idempotencyTtlS,
        settings.readsTtlS,
        settings.claimMs,
        i.claimToken,
        i.bucket?.capacity ?? 0,
        i.bucket?.perSecond ?? 0,
        i.replyTo ?? 0,
      ])) as [string, number | string, number, number];
      switch (reply[0]) {
        case 'OK':
          return { kind: 'accepted', seq: reply[1] as number, rev: reply[3], claimed: reply[2] === 1 };
        case 'BADREPLY':
          return { kind: 'bad-reply' };
        case 'DUP':
          return { kind: 'duplicate', json: reply[1] as string, claimed: reply[2] === 1 };
        default:
          return refusal(reply);
      }
    },

    /** Commits one change to a message (change.lua): see ChangeReply. */
    async change(i: ChangeInput): Promise<ChangeReply> {
      const { chatId } = i;
      const reply = (await acked('logChange', [
        keys.members(chatId),
        keys.rev(chatId),
        keys.active(chatId),
        keys.changed(chatId),
        keys.pendingChanges(chatId),
        keys.revs(chatId),
        keys.revsFloor(chatId),
        i.clientMsgId ? keys.idempotency(chatId, i.actorId, i.clientMsgId) : keys.rev(chatId),
        keys.ticket(chatId),
        i.bucket ? keys.rateLimit(i.actorId) : keys.rev(chatId),
        keys.seq(chatId),
        i.actorId,
        i.seq,
        i.fromRev,
        i.prefix ?? '',
        i.stored ?? '',
        keys.channel(chatId),
        CHAT_PAYLOAD.updated,
        i.clientMsgId ? '1' : '0',
        settings.idempotencyTtlS,
        settings.claimMs,
        i.claimToken,
        i.bucket?.capacity ?? 0,
        i.bucket?.perSecond ?? 0,
        settings.listMax,
      ])) as [string, ...(string | number)[]];
      switch (reply[0]) {
        case 'OK':
          return { kind: 'changed', rev: reply[1] as number, claimed: reply[2] === 1, json: reply[3] as string };
        case 'DUP':
          return { kind: 'duplicate', seq: reply[1] as number, json: reply[2] as string };
        case 'STALE':
          return { kind: 'stale', json: reply[1] as string };
        case 'NOOP':
          return { kind: 'unchanged', json: reply[1] as string };
        case 'NOTLOADED':
          return { kind: 'not-loaded' };
        default:
          return refusal(reply);
      }
    },

    /**
     * The state now of one message for a member about to change it: its JSON if Redis holds it
     * (the list or the changed hash), '' if only PostgreSQL does.
     */
    async readMessage(
      chatId: string,
      seq: number,
      readerId: string,
    ): Promise<{ kind: 'ok'; json: string } | { kind: 'forbidden' } | { kind: 'no-members' }> {
      const reply = (await fn.logReadMessage(
        keys.active(chatId),
        keys.changed(chatId),
        keys.members(chatId),
        seq,
        readerId,
      )) as [string, string?];
      if (reply[0] === 'FORBIDDEN') return { kind: 'forbidden' };
      if (reply[0] === 'NOMEMBERS') return { kind: 'no-members' };
      return { kind: 'ok', json: reply[1] ?? '' };
    },

    /** Messages up to `upToSeq` changed after `sinceRev`, in rev order (changes-since.lua). */
    async changesSince(chatId: string, sinceRev: number, upToSeq: number, max: number): Promise<ChangesSinceReply> {
      const [complete, rev, ...flat] = (await fn.logChangesSince(
        keys.revs(chatId),
        keys.revsFloor(chatId),
        keys.active(chatId),
        keys.changed(chatId),
        keys.rev(chatId),
        keys.pendingChanges(chatId),
        sinceRev,
        upToSeq,
        max,
      )) as [number, number, ...string[]];
      const changed: { seq: number; json: string }[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) changed.push({ seq: Number(flat[i]), json: flat[i + 1] ?? '' });
      return { complete: complete === 1, rev, changed };
    },

    /** The changed hash's copies of some messages (history's overlay on what PostgreSQL returned). */
    async changedCopies(chatId: string, seqs: readonly number[]): Promise<(string | null)[]> {
      if (seqs.length === 0) return [];
      return redis.hmget(keys.changed(chatId), ...seqs.map(String));
    },

    /**
     * Each chat's lowest pending messages (up to `max`), and pending seqs the list lost, in one
     * pipeline. A chat read with `releaseIfNone` and nothing pending has its ticket released in
     * the same step.
     */
    readPending(
      reads: readonly { chatId: string; max: number; releaseIfNone: boolean }[],
    ): Promise<{ found: string[]; orphans: string[]; changes: string[] }[]> {
      return many(
        'logReadPending',
        reads.map((r) => readPendingArgs(r.chatId, r.max, r.releaseIfNone)),
        parsePending,
      );
    },

    /**
     * Removes `seqs` from the pending set and trims the list (`more`: messages are still pending).
     * `keep`: the caller's job holds the chat: the ticket is renewed. `leave`: it is left alone
     * (reconciliation).
     */
    async markPersisted(
      chats: readonly PersistedChat[],
      ticket: 'keep' | 'leave',
    ): Promise<{ trimmed: number; more: boolean; persistedSeq: number }[]> {
      return many(
        'logMarkPersisted',
        chats.map((c) => markArgs(c, ticket)),
        parseMark,
      );
    },

    /** Makes a claim the chat's ticket (its job was added); false when it no longer was the claim. */
    async confirmClaim(chatId: string, token: string): Promise<boolean> {
      return (await fn.logClaim(keys.ticket(chatId), 'confirm', token, settings.ticketMs)) === 1;
    },

    /** Frees the chat's ticket if it still is this claim (its job add failed). */
    async releaseClaim(chatId: string, token: string): Promise<boolean> {
      return (await fn.logClaim(keys.ticket(chatId), 'release', token, 0)) === 1;
    },

    /** A page of the active list by seq: after `bound` ascending, or the newest below it. */
    async history(chatId: string, mode: 'after' | 'before', bound: number, count: number): Promise<HistoryReply> {
      const [head, complete, counter, ...jsons] = (await fn.logHistory(
        keys.active(chatId),
        keys.seq(chatId),
        mode,
        bound,
        count,
      )) as [number, number, number, ...string[]];
      return { head, complete: complete === 1, counter, jsons };
    },

    /**
     * The archive's trim: persisted messages over the bound or created before `ageCutoffIso`,
     * never above `checkedSeq` (PostgreSQL was seen to hold the list up to it) nor at or above the
     * lowest pending seq; `ttlS` > 0 lets the chat's keys expire when nothing is pending.
     */
    async archiveTrim(
      chatId: string,
      o: { ageCutoffIso: string; checkedSeq: number; ttlS: number },
    ): Promise<{ trimmed: number; expiring: boolean }> {
      const [trimmed, expiring] = (await fn.logArchiveTrim(
        keys.active(chatId),
        keys.pending(chatId),
        keys.seq(chatId),
        keys.pendingChanges(chatId),
        keys.rev(chatId),
        keys.changed(chatId),
        keys.revs(chatId),
        keys.revsFloor(chatId),
        settings.listMax,
        o.ageCutoffIso,
        o.checkedSeq,
        o.ttlS,
      )) as [number, number];
      return { trimmed, expiring: expiring === 1 };
    },

    /**
     * Seeds missing seq and rev counters at the floors or the list's last seq and rev; returns the
     * seq counter's value.
     */
    async seedSeq(chatId: string, floor: { seq: number; rev: number }): Promise<number> {
      return (await fn.logSeedSeq(
        keys.seq(chatId),
        keys.active(chatId),
        keys.rev(chatId),
        keys.revsFloor(chatId),
        floor.seq,
        floor.rev,
      )) as number;
    },

    /** Writes newer states of messages over Redis's older copies (refresh-copies.lua). */
    async refreshCopies(chatId: string, jsons: readonly string[]): Promise<void> {
      if (jsons.length === 0) return;
      await fn.logRefreshCopies(
        keys.active(chatId),
        keys.changed(chatId),
        keys.revs(chatId),
        keys.pendingChanges(chatId),
        ...jsons,
      );
    },

    /** Raises existing seq and rev counters to at least the floors; -1 when the seq counter is missing. */
    async raiseSeq(chatId: string, floor: { seq: number; rev: number }): Promise<number> {
      return (await fn.logRaiseSeq(
        keys.seq(chatId),
        keys.rev(chatId),
        keys.revsFloor(chatId),
        floor.seq,
        floor.rev,
      )) as number;
    },
  };
}

export type LogScripts = ReturnType<typeof createLogScripts>;
