import { describe, expect, it } from 'vitest';
import { isRedisRefusedError, isUnavailableError, toAppError } from '../../src/domain/errors.js';
import { createKeys } from '../../src/redis/keys.js';

describe('chat key patterns', () => {
  it('finds the chat id in a key of its prefix only', () => {
    const keys = createKeys('t1:');
    const id = '0b6f1a52-8f0e-4a57-9a4c-2d1c8e1f7a10';
    expect(keys.chatIdOfKey(keys.active(id))).toBe(id);
    expect(keys.chatIdOfKey(keys.idempotency(id, 'sender', 'x}:seq'))).toBe(id);
    expect(keys.chatIdOfKey(`t2:chat:{${id}}:seq`)).toBeNull();
    expect(keys.chatIdOfKey(keys.presence(id))).toBeNull();
  });

  it('escapes glob characters of a prefix in SCAN patterns', () => {
    expect(createKeys('a*b?[c]:').chatKeysPattern()).toBe('a\\*b\\?\\[c\\]:chat:{*}:*');
    expect(createKeys('').pendingPattern()).toBe('chat:{*}:pending');
  });
});

describe('Redis refusing writes', () => {
  it('is a 503 unavailable, not an internal error', () => {
    const oom = new Error("OOM command not allowed when used memory > 'maxmemory'. script: abc, on @user_script:1.");
    expect(isRedisRefusedError(oom)).toBe(true);
    expect(isUnavailableError(oom)).toBe(true);
    expect(toAppError(oom)).toMatchObject({ code: 'unavailable', status: 503 });
    expect(isRedisRefusedError(new Error('ERR wrong number of arguments'))).toBe(false);
  });
});
