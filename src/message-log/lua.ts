import { loadLua as load } from '../redis/lua.js';

/** A script of this module's lua/ folder, with its includes inlined (src/redis/lua.ts). */
export const loadLua = (name: string): string => load(new URL(`./lua/${name}`, import.meta.url));
