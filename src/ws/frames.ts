import type { AppError } from '../domain/errors.js';

/** Server → client frames that are built in more than one place. */
export const frames = {
  /** `context` names what was refused: the send's clientMsgId, the chat of a failed sync. */
  error: (err: AppError, context?: { clientMsgId?: string | null; chatId?: string }): string =>
    JSON.stringify({
      type: 'error',
      ...err.details,
      code: err.code,
      message: err.message,
      ...(context?.clientMsgId ? { clientMsgId: context.clientMsgId } : {}),
      ...(context?.chatId ? { chatId: context.chatId } : {}),
    }),
  /** `messageJson` is the stored JSON of the message, reused as is. */
  ack: (clientMsgId: string, messageJson: string): string =>
    `{"type":"ack","clientMsgId":${JSON.stringify(clientMsgId)},"message":${messageJson}}`,
  message: (messageJson: string): string => `{"type":"message","message":${messageJson}}`,
};
