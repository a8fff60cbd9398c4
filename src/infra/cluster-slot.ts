/**
 * The Redis Cluster hash slot of a key or a sharded channel (CRC16-XMODEM of the key, or of its
 * hash tag, modulo 16384), as the server computes it (CLUSTER KEYSLOT). Used to group keys and
 * channels by slot: a script, a transaction, one MULTI or one SSUBSCRIBE may only touch one slot.
 *
 * The hash tag: when the key holds a `{` followed later by a `}` with at least one character
 * between them, only what lies between the first `{` and the first `}` after it is hashed.
 */
export const CLUSTER_SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ (bytes[i] ?? 0)) & 0xff] ?? 0);
  return crc;
}

const encoder = new TextEncoder();

export function clusterKeySlot(key: string | Uint8Array): number {
  const bytes = typeof key === 'string' ? encoder.encode(key) : key;
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf(0x7b); // '{'
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // '}'
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  return crc16(bytes, start, end) % CLUSTER_SLOTS;
}
