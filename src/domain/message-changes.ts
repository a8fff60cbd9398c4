import { AppError } from './errors.js';
import type { Message, MessageChange } from './types.js';

/** Who is changing a message, and what the rules need to know about its chat. */
export interface ChangeContext {
  actorId: string;
  /** The chat's creator, who may delete anyone's message; null when not known (the sender still may). */
  chatCreatorId: string | null;
  /** When the change happens (ISO-8601 UTC). */
  now: string;
}

/**
 * The rules of docs/protocol.md "Message lifecycle", as one pure function: the message's next
 * state, or null when the change changes nothing (the same reaction twice, removing a reaction
 * that is not there, deleting a tombstone again); an AppError when it is refused. The rev is the
 * log's to allocate: the returned state keeps the current one.
 * - Edit: only the sender; the body is replaced and `editedAt` set. A tombstone cannot be edited.
 * - Delete: the sender or the chat's creator; the message becomes a tombstone (body "",
 *   `deletedAt` set, reactions emptied) and keeps its seq.
 * - React: any member; one reaction per user and emoji; a tombstone cannot be reacted to.
 *   Reactions stay in the order each emoji was first used; an emoji nobody uses any more goes.
 */
export function applyChange(current: Message, change: MessageChange, ctx: ChangeContext): Message | null {
  switch (change.kind) {
    case 'edit': {
      if (current.senderId !== ctx.actorId) throw new AppError('forbidden', 'only its sender may edit a message');
      if (current.deletedAt) throw new AppError('conflict', 'a deleted message cannot be edited');
      if (current.body === change.body) return null;
      return { ...current, body: change.body, editedAt: ctx.now };
    }
    case 'delete': {
      const allowed = current.senderId === ctx.actorId || ctx.chatCreatorId === ctx.actorId;
      if (!allowed) throw new AppError('forbidden', "only its sender or the chat's creator may delete a message");
      if (current.deletedAt) return null;
      return { ...current, body: '', deletedAt: ctx.now, reactions: [] };
    }
    case 'react': {
      if (current.deletedAt) throw new AppError('conflict', 'a deleted message cannot be reacted to');
      const index = current.reactions.findIndex((r) => r.emoji === change.emoji);
      const reaction = current.reactions[index];
      const has = reaction?.userIds.includes(ctx.actorId) ?? false;
      if (has === change.on) return null;
      const reactions = [...current.reactions];
      if (change.on) {
        if (reaction) {
          reactions[index] = {
            emoji: reaction.emoji,
            count: reaction.count + 1,
            userIds: [...reaction.userIds, ctx.actorId],
          };
        } else reactions.push({ emoji: change.emoji, count: 1, userIds: [ctx.actorId] });
      } else if (reaction) {
        const userIds = reaction.userIds.filter((u) => u !== ctx.actorId);
        if (userIds.length === 0) reactions.splice(index, 1);
        else reactions[index] = { emoji: reaction.emoji, count: userIds.length, userIds };
      }
      return { ...current, reactions };
    }
  }
}
