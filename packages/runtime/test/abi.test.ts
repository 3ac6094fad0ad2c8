import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '@nabla-build/model';
import { buildFixtureGuest } from '@nabla-build/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAbi, checkKernelForTender, readSolo5AbiNote, readTenderAbi, writeTenderAbi } from '../src/index.js';

let dir: string;
let abi1: string;
let abi2: string;
let plain: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nb-abi-'));
  [abi1, abi2, plain] = await Promise.all([
    buildFixtureGuest(dir, { name: 'abi1.nabla', solo5Abi: 1 }),
    buildFixtureGuest(dir, { name: 'abi2.nabla', solo5Abi: 2 }),
    buildFixtureGuest(dir, { name: 'plain.nabla' }),
  ]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checkAbi', () => {
  it('passes equal or unknown ABIs and refuses different ones with a clear message', () => {
    expect(() => checkAbi(1, 1)).not.toThrow();
    expect(() => checkAbi(undefined, 2)).not.toThrow();
    expect(() => checkAbi(2, undefined)).not.toThrow();
    let err: unknown;
    try {
      checkAbi(2, 1, { tender: '/opt/runnc/bin/nabla-run', unikernel: 'retrage/lkl-nabla-redis-base' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toBe(
      '/opt/runnc/bin/nabla-run speaks spt ABI 2 but retrage/lkl-nabla-redis-base was built for spt ABI 1; the tender would refuse it ("unsupported ABI version")',
    );
    expect((err as UsageError).hint).toMatch(/spt ABI 1/);
  });
});

describe('ABI sources', () => {
  it('writes and reads the tender sidecar', async () => {
    const tender = join(dir, 'nabla-run');
    writeFileSync(tender, '');
    expect(await readTenderAbi(tender)).toBeUndefined();
    expect(await writeTenderAbi(tender, 2)).toBe(`${tender}.abi`);
    expect(await readTenderAbi(tender)).toBe(2);
    writeFileSync(`${tender}.abi`, 'garbage\n');
    await expect(readTenderAbi(tender)).rejects.toThrow(/not an spt ABI version/);
  });

  it('reads the Solo5 ABI1 note of a unikernel binary', async () => {
    expect(await readSolo5AbiNote(abi1)).toEqual({ target: 2, version: 1 });
    expect(await readSolo5AbiNote(abi2)).toEqual({ target: 2, version: 2 });
    expect(await readSolo5AbiNote(plain)).toBeUndefined();
    const notElf = join(dir, 'not-elf');
    writeFileSync(notElf, 'hello');
    await expect(readSolo5AbiNote(notElf)).rejects.toThrow(/not an ELF file/);
  });

  it('pairs a tender with a unikernel', async () => {
    const tender = join(dir, 'solo5-spt');
    writeFileSync(tender, '');
    await writeTenderAbi(tender, 1);
    expect(await checkKernelForTender(abi1, tender)).toEqual({ tenderAbi: 1, note: { target: 2, version: 1 } });
    await expect(checkKernelForTender(abi2, tender)).rejects.toThrow(
      /speaks spt ABI 1 but .*abi2\.nabla was built for spt ABI 2/,
    );
    expect(await checkKernelForTender(plain, tender)).toEqual({ tenderAbi: 1 });
  });
});
