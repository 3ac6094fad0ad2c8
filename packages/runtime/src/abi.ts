/**
 * Pairing spt tenders and unikernels by Solo5 ABI. Tenders and unikernels of different Solo5 generations refuse
 * each other ("unsupported ABI version": Solo5 b326416 is spt ABI 1, main is ABI 2), so we check before
 * launching. Images carry the ABI in a label (image/labels.ts); an installed tender records it in a sidecar
 * `<tender>.abi`; a unikernel binary carries it in its Solo5 `ABI1` ELF note.
 */
import { open, readFile } from 'node:fs/promises';
import { writeFileAtomic } from '@nabla-build/fsio';
import { UsageError } from '@nabla-build/model';

/** Solo5's `SPT_ABI_TARGET` (`enum abi_target`: HVT 1, SPT 2, VIRTIO 3...). */
export const SPT_ABI_TARGET = 2;

const ABI1_NOTE_NAME = 'Solo5';
const ABI1_NOTE_TYPE = 0x31494241; // "ABI1"

/** Path of the sidecar file recording a tender's ABI. */
export function tenderAbiFile(tender: string): string {
  return `${tender}.abi`;
}

function parseAbi(text: string, where: string): number {
  const t = text.trim();
  if (!/^[1-9][0-9]{0,5}$/.test(t)) {
    throw new UsageError('runtime.invalid-abi', `\`${t}\` is not an spt ABI version (a positive integer)`, { where });
  }
  return Number(t);
}

/** Records a tender's spt ABI next to it (`<tender>.abi`, one line), atomically. */
export async function writeTenderAbi(tender: string, abi: number): Promise<string> {
  const file = tenderAbiFile(tender);
  parseAbi(String(abi), file);
  await writeFileAtomic(file, `${abi}\n`);
  return file;
}

/** Reads a tender's spt ABI from its sidecar; `undefined` when there is none. */
export async function readTenderAbi(tender: string): Promise<number | undefined> {
  const file = tenderAbiFile(tender);
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  return text === undefined ? undefined : parseAbi(text, file);
}

/** The Solo5 ABI note of a unikernel binary. */
export interface Solo5AbiNote {
  /** `enum abi_target`: 2 is spt. */
  target: number;
  version: number;
}

/**
 * Reads the Solo5 `ABI1` note (name `Solo5`, type `0x31494241`, descriptor `{u32 target, u32 version, ...}`)
 * from a little-endian ELF64 file, through its PT_NOTE segments. `undefined` when the file has none.
 */
export async function readSolo5AbiNote(file: string): Promise<Solo5AbiNote | undefined> {
  const fh = await open(file, 'r');
  try {
    const read = async (pos: number, len: number): Promise<Buffer> => {
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, pos);
      return buf.subarray(0, bytesRead);
    };
    const eh = await read(0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46) {
      throw new UsageError('runtime.not-elf', 'not an ELF file', { where: file });
    }
    if (eh[4] !== 2 || eh[5] !== 1) {
      throw new UsageError('runtime.not-elf', 'not a little-endian ELF64 file', { where: file });
    }
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    for (let i = 0; i < phnum; i++) {
      const ph = await read(phoff + i * phentsize, 56);
      if (ph.length < 56 || ph.readUInt32LE(0) !== 4 /* PT_NOTE */) continue;
      const notes = await read(Number(ph.readBigUInt64LE(8)), Number(ph.readBigUInt64LE(32)));
      const found = findAbiNote(notes, Number(ph.readBigUInt64LE(48)) === 8 ? 8 : 4);
      if (found) return found;
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

function findAbiNote(buf: Buffer, align: number): Solo5AbiNote | undefined {
  const pad = (n: number) => (n + align - 1) & ~(align - 1);
  let off = 0;
  while (off + 12 <= buf.length) {
    const namesz = buf.readUInt32LE(off);
    const descsz = buf.readUInt32LE(off + 4);
    const type = buf.readUInt32LE(off + 8);
    const nameStart = off + 12;
    const descStart = nameStart + pad(namesz);
    if (descStart + descsz > buf.length) return undefined;
    const name = buf.toString('latin1', nameStart, nameStart + namesz).replace(/\0+$/, '');
    if (name === ABI1_NOTE_NAME && type === ABI1_NOTE_TYPE && descsz >= 8) {
      return { target: buf.readUInt32LE(descStart), version: buf.readUInt32LE(descStart + 4) };
    }
    off = descStart + pad(descsz);
  }
  return undefined;
}

/**
 * Throws a UsageError when a tender and a unikernel speak different spt ABI versions. Unknown on either side
 * (`undefined`) passes: there is nothing to compare.
 */
export function checkAbi(
  tenderAbi: number | undefined,
  unikernelAbi: number | undefined,
  subjects: { tender?: string; unikernel?: string } = {},
): void {
  if (tenderAbi === undefined || unikernelAbi === undefined || tenderAbi === unikernelAbi) return;
  const t = subjects.tender ?? 'the tender';
  const u = subjects.unikernel ?? 'the unikernel';
  throw new UsageError(
    'runtime.abi-mismatch',
    `${t} speaks spt ABI ${tenderAbi} but ${u} was built for spt ABI ${unikernelAbi}; the tender would refuse it ("unsupported ABI version")`,
    {
      hint: `use a tender from the same Solo5 generation as the unikernel (spt ABI ${unikernelAbi}), e.g. the one built by the unikernel's toolchain, and record it with \`${tenderAbiFile('<tender>')}\``,
    },
  );
}

/**
 * Checks a unikernel binary against a tender before launching: the binary's ABI1 note (when it has one) must
 * be for the spt target and match the tender's recorded ABI (when recorded). Returns what was compared.
 */
export async function checkKernelForTender(
  kernel: string,
  tender: string,
): Promise<{ tenderAbi?: number; note?: Solo5AbiNote }> {
  const [tenderAbi, note] = await Promise.all([readTenderAbi(tender), readSolo5AbiNote(kernel)]);
  if (note && note.target !== SPT_ABI_TARGET) {
    throw new UsageError('runtime.abi-mismatch', `${kernel} is not a solo5-spt unikernel (ABI target ${note.target})`, {
      hint: 'build the unikernel for the spt target',
    });
  }
  checkAbi(tenderAbi, note?.version, { tender, unikernel: kernel });
  return { ...(tenderAbi !== undefined ? { tenderAbi } : {}), ...(note ? { note } : {}) };
}
