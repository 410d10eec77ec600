import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DataSetMissingError,
  hashDataSet,
  verifyDataHash,
  type HashDataSetInput,
} from '../../src/activities/reproducibility/data-hashes';
import { RecordedData } from '../../src/experiment/reproducibility';

const MiB = 1024 * 1024;

const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix = 'labline-data-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Writes `content` to `root/relative`, creating folders, and returns the file's path. */
function writeFile(root: string, relative: string, content: string | Buffer): string {
  const file = path.join(root, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

/** Input for hashing `source` into a fresh run directory, with a cache file beside it. */
function inputFor(source: string, overrides: Partial<HashDataSetInput> = {}): HashDataSetInput {
  const runs = tempDir('labline-data-runs-');
  return {
    name: 'digits',
    source,
    runDir: path.join(runs, 'exp-test'),
    cacheFile: path.join(runs, '.labline-data-hashes.json'),
    ...overrides,
  };
}

/** The cache file as written, untyped: the test checks its shape itself. */
function readCache(
  file: string,
): Record<string, { size: number; mtimeMs: number; ino: number; sha256: string }> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<
    string,
    { size: number; mtimeMs: number; ino: number; sha256: string }
  >;
}

const LONG_AGO = new Date('2024-01-02T03:04:05Z');
const LATER = new Date('2024-06-07T08:09:10Z');

describe('hashDataSet', () => {
  test('a file: the SHA-256 of its bytes (read in several chunks), kind file, its size; no manifest', async () => {
    const content = randomBytes(3 * MiB + 17);
    const file = writeFile(tempDir(), 'train.bin', content);
    const input = inputFor(file);

    const recorded = await hashDataSet(input);

    expect(recorded).toEqual({
      name: 'digits',
      source: file,
      kind: 'file',
      sha256: sha256(content),
      bytes: content.length,
    });
    expect(RecordedData.parse(recorded)).toEqual(recorded);
    expect(fs.existsSync(path.join(input.runDir, 'data-manifests'))).toBe(false);
  });

  test('a directory: one `<sha256>  <path>` line per file in full-path order, symlinks by target, hashed as the manifest', async () => {
    const root = tempDir();
    writeFile(root, 'b.txt', 'bee\n');
    writeFile(root, 'a/z.bin', 'zed');
    writeFile(root, 'a/b/c.txt', 'sea');
    writeFile(root, 'a-b.txt', 'dash'); // '-' sorts before '/': full paths are compared, not folder by folder
    writeFile(root, 'A.txt', 'upper'); // code-unit order: upper case first, whatever the locale
    writeFile(root, '.hidden', 'dot');
    fs.mkdirSync(path.join(root, 'empty'));
    fs.symlinkSync('a/z.bin', path.join(root, 'link'));
    fs.symlinkSync('/nonexistent/target', path.join(root, 'dangling'));
    const input = inputFor(root);

    const recorded = await hashDataSet(input);

    const manifest = [
      `${sha256('dot')}  .hidden\n`,
      `${sha256('upper')}  A.txt\n`,
      `${sha256('dash')}  a-b.txt\n`,
      `${sha256('sea')}  a/b/c.txt\n`,
      `${sha256('zed')}  a/z.bin\n`,
      `${sha256('bee\n')}  b.txt\n`,
      `${sha256('/nonexistent/target')}  dangling\n`,
      `${sha256('a/z.bin')}  link\n`,
    ].join('');
    expect(recorded).toEqual({
      name: 'digits',
      source: root,
      kind: 'directory',
      sha256: sha256(manifest),
      bytes: 'dot'.length + 'upper'.length + 'dash'.length + 'sea'.length + 'zed'.length + 'bee\n'.length,
      files: 8,
      manifest: 'data-manifests/digits.txt',
    });
    expect(fs.readFileSync(path.join(input.runDir, 'data-manifests', 'digits.txt'), 'utf8')).toBe(manifest);
    // Written through a temp file and a rename: nothing else is left beside it.
    expect(fs.readdirSync(path.join(input.runDir, 'data-manifests'))).toEqual(['digits.txt']);
  });

  test('an unchanged file (size, mtime, inode) is not read again; a new mtime makes it read again', async () => {
    const file = writeFile(tempDir(), 'train.csv', 'aaaa');
    fs.utimesSync(file, LONG_AGO, LONG_AGO);
    const input = inputFor(file);
    const inode = fs.statSync(file).ino;

    const first = await hashDataSet(input);
    // Same size, same inode, mtime put back: only a read of the bytes could tell, so a cached hash proves no read.
    fs.writeFileSync(file, 'bbbb');
    fs.utimesSync(file, LONG_AGO, LONG_AGO);
    expect(fs.statSync(file).ino).toBe(inode);
    const cached = await hashDataSet(input);
    fs.utimesSync(file, LATER, LATER);
    const reread = await hashDataSet(input);

    expect(first.sha256).toBe(sha256('aaaa'));
    expect(cached.sha256).toBe(sha256('aaaa'));
    expect(reread.sha256).toBe(sha256('bbbb'));
    expect(readCache(input.cacheFile)).toEqual({
      [file]: { size: 4, mtimeMs: LATER.getTime(), ino: inode, sha256: sha256('bbbb') },
    });
  });

  test('a file replaced by another of the same size and mtime (a new inode) is read again', async () => {
    const dir = tempDir();
    const file = writeFile(dir, 'train.csv', 'aaaa');
    fs.utimesSync(file, LONG_AGO, LONG_AGO);
    const input = inputFor(file);

    const first = await hashDataSet(input);
    // How tools usually rewrite a file: a new one beside it, renamed over it. The new one is created while the
    // old one still exists, so it cannot reuse the old inode.
    const replacement = writeFile(dir, 'train.csv.new', 'bbbb');
    fs.utimesSync(replacement, LONG_AGO, LONG_AGO);
    const oldInode = fs.statSync(file).ino;
    fs.renameSync(replacement, file);
    expect(fs.statSync(file).ino).not.toBe(oldInode);
    const replaced = await hashDataSet(input);

    expect(first.sha256).toBe(sha256('aaaa'));
    expect(replaced.sha256).toBe(sha256('bbbb'));
  });

  test("files inside a directory are cached the same way, so an unchanged directory's files are not read", async () => {
    const root = tempDir();
    const file = writeFile(root, 'shard-0.bin', 'aaaa');
    writeFile(root, 'shard-1.bin', 'cccc');
    fs.utimesSync(file, LONG_AGO, LONG_AGO);
    const input = inputFor(root);

    const first = await hashDataSet(input);
    fs.writeFileSync(file, 'bbbb');
    fs.utimesSync(file, LONG_AGO, LONG_AGO);
    const cached = await hashDataSet(input);
    fs.utimesSync(file, LATER, LATER);
    const reread = await hashDataSet(input);

    expect(cached.sha256).toBe(first.sha256);
    expect(reread.sha256).not.toBe(first.sha256);
    expect(fs.readFileSync(path.join(input.runDir, 'data-manifests', 'digits.txt'), 'utf8')).toBe(
      `${sha256('bbbb')}  shard-0.bin\n${sha256('cccc')}  shard-1.bin\n`,
    );
  });

  test('a corrupt cache file counts as empty and is replaced by a whole one', async () => {
    const file = writeFile(tempDir(), 'train.csv', 'rows');
    const input = inputFor(file);
    fs.writeFileSync(input.cacheFile, '{"half-written": {"size": 4, "mti');

    const recorded = await hashDataSet(input);

    expect(recorded.sha256).toBe(sha256('rows'));
    expect(Object.keys(readCache(input.cacheFile))).toEqual([file]);
  });

  test('concurrent calls sharing one cache file leave it whole, with no temp files behind', async () => {
    const root = tempDir();
    const files = Array.from({ length: 8 }, (_, index) =>
      writeFile(root, `part-${index}.bin`, `part ${index}`),
    );
    const shared = inputFor(files[0] ?? '');

    const recorded = await Promise.all(
      files.map((file, index) => hashDataSet({ ...shared, name: `part-${index}`, source: file })),
    );

    expect(recorded.map((data) => data.sha256)).toEqual(files.map((_, index) => sha256(`part ${index}`)));
    const cache = readCache(shared.cacheFile);
    expect(Object.keys(cache).length).toBeGreaterThanOrEqual(1);
    for (const [file, entry] of Object.entries(cache))
      expect(entry.sha256).toBe(sha256(fs.readFileSync(file)));
    expect(fs.readdirSync(path.dirname(shared.cacheFile)).filter((name) => name.endsWith('.tmp'))).toEqual(
      [],
    );
  });

  test('a missing source throws DataSetMissingError naming the data set, the path and the fix', async () => {
    const missing = path.join(tempDir(), 'not-there', 'train.csv');
    const input = inputFor(missing, { name: 'digits-train' });

    const error = await hashDataSet(input).catch((thrown: unknown) => thrown);

    expect(error).toBeInstanceOf(DataSetMissingError);
    expect(error).toMatchObject({ name: 'DataSetMissingError', dataSet: 'digits-train', path: missing });
    expect((error as Error).message).toBe(
      `Data set "digits-train" is missing: ${missing} does not exist. ` +
        'Check the path under `data:` in the spec, or remove the entry.',
    );
    expect(fs.existsSync(input.cacheFile)).toBe(false);
  });

  test('a name that is not a data set name is refused before anything is written', async () => {
    const file = writeFile(tempDir(), 'train.csv', 'rows');
    const input = inputFor(path.dirname(file), { name: '../escape' });

    await expect(hashDataSet(input)).rejects.toThrow('Data set name "../escape" is not a data set name');
    expect(fs.existsSync(input.runDir)).toBe(false);
  });

  test('onProgress is called at every 64 MiB and at the end, also when the hash comes from the cache', async () => {
    const file = path.join(tempDir(), 'large.bin');
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 150 * MiB); // sparse: 150 MiB to read without writing them
    const progress: number[] = [];
    const input = inputFor(file, { onProgress: (bytes) => progress.push(bytes) });

    const recorded = await hashDataSet(input);
    const afterFirst = progress.splice(0);
    await hashDataSet(input);

    expect(recorded.sha256).toBe(
      createHash('sha256')
        .update(Buffer.alloc(150 * MiB))
        .digest('hex'),
    );
    expect(afterFirst).toEqual([64 * MiB, 128 * MiB, 150 * MiB]);
    expect(progress.at(-1)).toBe(150 * MiB);
  });
});

describe('verifyDataHash', () => {
  const recorded: RecordedData = {
    name: 'digits-train',
    source: '/data/digits/train.csv',
    kind: 'file',
    sha256: `0123456789ab${'c'.repeat(52)}`,
  };

  test('is undefined when the hash is the expected one, whatever its case', () => {
    expect(verifyDataHash(recorded, recorded.sha256 ?? '')).toBeUndefined();
    expect(verifyDataHash(recorded, (recorded.sha256 ?? '').toUpperCase())).toBeUndefined();
  });

  test('names the data set, its source and both hash prefixes when they differ', () => {
    expect(verifyDataHash(recorded, 'f'.repeat(64))).toBe(
      'Data set "digits-train" (/data/digits/train.csv) has changed: expected sha256 ffffffffffff…, ' +
        'found 0123456789ab…; if the change is intended, update its `sha256` under `data:` in the spec.',
    );
  });

  test('shows as many digits as it takes to tell hashes apart that share a long prefix', () => {
    const expected = `0123456789ab${'c'.repeat(20)}d${'c'.repeat(31)}`;

    expect(verifyDataHash(recorded, expected)).toContain(
      `expected sha256 0123456789ab${'c'.repeat(20)}d…, found 0123456789ab${'c'.repeat(21)}…`,
    );
  });

  test('says there is nothing to compare when the data set has no hash', () => {
    expect(verifyDataHash({ ...recorded, sha256: undefined }, 'f'.repeat(64))).toMatch(
      /^Data set "digits-train" \(\/data\/digits\/train\.csv\) has no content hash to compare with ffffffffffff…/,
    );
  });
});
