/**
 * The tar headers of a layer, encoded exactly as tar-stream 3 (`tar.pack()`) encodes them, so layers written
 * without going through its streams keep their diff_ids (checked against tar-stream in test/tar.test.ts):
 * ustar headers; a name that is not ASCII, or too long for name + prefix, or a link target longer than 100
 * bytes, gets a pax header (`path=`, `linkpath=`) first.
 */

export interface TarHeaderFields {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname?: string;
}

const ZEROS = '0000000000000000000';
const SEVENS = '7777777777777777777';
const TYPEFLAG = { file: 0, symlink: 2, directory: 5 } as const;
const PAX_TYPEFLAG = 72;

/** 1024 zero bytes: the end-of-archive marker (and the source of padding). */
export const END_OF_TAR: Buffer = Buffer.alloc(1024);

/** Bytes of padding after a body of `size` bytes. */
export function tarPadding(size: number): number {
  const r = size & 511;
  return r ? 512 - r : 0;
}

/** The header block(s) of one entry: one 512-byte ustar header, or pax header + pax data + padding + header. */
export function encodeTarHeader(h: TarHeaderFields): Buffer[] {
  const size = h.type === 'file' ? h.size : 0;
  const plain = encodeUstar(h.name, h.mode, size, h.mtime, TYPEFLAG[h.type], h.linkname);
  if (plain) return [plain];
  let pax = '';
  if (h.name) pax += paxRecord(` path=${h.name}\n`);
  if (h.linkname) pax += paxRecord(` linkpath=${h.linkname}\n`);
  const paxData = Buffer.from(pax);
  const link = h.linkname ? 'PaxHeader' : undefined;
  const out = [encodeUstar('PaxHeader', h.mode, paxData.length, h.mtime, PAX_TYPEFLAG, link) as Buffer, paxData];
  const pad = tarPadding(paxData.length);
  if (pad) out.push(END_OF_TAR.subarray(0, pad));
  out.push(encodeUstar('PaxHeader', h.mode, size, h.mtime, TYPEFLAG[h.type], link) as Buffer);
  return out;
}

function encodeUstar(
  fullName: string,
  mode: number,
  size: number,
  mtime: number,
  typeflag: number,
  linkname: string | undefined,
): Buffer | null {
  let name = fullName;
  let prefix = '';
  if (Buffer.byteLength(name) !== name.length) return null;
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return null;
    prefix += prefix ? `/${name.slice(0, i)}` : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (name.length > 100 || prefix.length > 155) return null;
  if (linkname && Buffer.byteLength(linkname) > 100) return null;
  const buf = Buffer.alloc(512);
  buf.write(name, 0, 'latin1');
  buf.write(oct(mode & 0o7777, 6), 100, 'latin1');
  buf.write(oct(0, 6), 108, 'latin1');
  buf.write(oct(0, 6), 116, 'latin1');
  if (size.toString(8).length > 11) {
    buf[124] = 0x80;
    let n = size;
    for (let i = 11; i > 0; i--) {
      buf[124 + i] = n & 0xff;
      n = Math.floor(n / 0x100);
    }
  } else buf.write(oct(size, 11), 124, 'latin1');
  buf.write(oct(mtime | 0, 11), 136, 'latin1');
  buf[156] = 48 + typeflag;
  if (linkname) buf.write(linkname, 157);
  buf.write('ustar\0', 257, 'latin1');
  buf.write('00', 263, 'latin1');
  buf.write(oct(0, 6), 329, 'latin1');
  buf.write(oct(0, 6), 337, 'latin1');
  if (prefix) buf.write(prefix, 345, 'latin1');
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += buf[i] as number;
  for (let i = 156; i < 512; i++) sum += buf[i] as number;
  buf.write(oct(sum, 6), 148, 'latin1');
  return buf;
}

function oct(val: number, n: number): string {
  const s = val.toString(8);
  if (s.length > n) return `${SEVENS.slice(0, n)} `;
  return `${ZEROS.slice(0, n - s.length)}${s} `;
}

function paxRecord(str: string): string {
  const len = Buffer.byteLength(str);
  let digits = Math.floor(Math.log(len) / Math.log(10)) + 1;
  if (len + digits >= 10 ** digits) digits++;
  return `${len + digits}${str}`;
}
