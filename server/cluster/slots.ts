// Redis Cluster's key → slot mapping (CRC16/XMODEM of the key's hash tag, mod 16384), so
// a batch of keys can be split into one script call per slot: a script may only touch
// keys of one slot on Redis Cluster.

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let k = 0; k < 8; k++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
  TABLE[i] = c & 0xffff;
}

/** The slot of `key`: of its hash tag (the part between the first `{` and the next `}`) when non-empty. */
export function slotOf(key: string): number {
  let s = key;
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) s = key.slice(open + 1, close);
  }
  const bytes = Buffer.from(s, 'utf8');
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc & 16383;
}
