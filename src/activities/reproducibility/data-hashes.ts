/**
 * Content hashes of the data sets a run reads, for `reproducibility.json`: a file's SHA-256, or a directory's
 * manifest (one `<sha256>  <path>` line per file, the format `sha256sum` prints) and the SHA-256 of that
 * manifest. Data sets are large and launched many times, so each file's hash is cached by size, modification
 * time and inode; an unchanged file is never read twice.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DataName } from '../../experiment/code';
import type { RecordedData } from '../../experiment/reproducibility';
import { writeFileAtomic } from '../atomic-file';

/** How often, in bytes covered, {@link hashDataSet} reports progress: 64 MiB. */
export const PROGRESS_STEP_BYTES = 64 * 1024 * 1024;

/** How often, in files, progress is reported, so a directory of small cached files still heartbeats. */
const PROGRESS_STEP_FILES = 1000;

/** The folder of the run directory that holds directory manifests. */
export const DATA_MANIFESTS_DIR = 'data-manifests';

/** Read size of the hashing stream: large reads keep a disk-bound hash near the disk's speed. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** A data set's source does not exist. Not retryable by waiting: the spec names a path that is not there. */
export class DataSetMissingError extends Error {
  override readonly name = 'DataSetMissingError';

  constructor(
    /** The data set's name in the spec. */
    readonly dataSet: string,
    /** The absolute path that does not exist. */
    readonly path: string,
  ) {
    super(
      `Data set "${dataSet}" is missing: ${path} does not exist. ` +
        'Check the path under `data:` in the spec, or remove the entry.',
    );
  }
}

/** Input of {@link hashDataSet}. */
export interface HashDataSetInput {
  /** The data set's name in the spec (`digits-train`); names its manifest file. */
  name: string;
  /** Absolute path of the file or directory. A symlink here is followed; ones inside a directory are not. */
  source: string;
  /** The run directory; a directory's manifest goes to `<runDir>/data-manifests/<name>.txt`. */
  runDir: string;
  /** The hash cache (JSON), shared by every run on the host; created when missing. */
  cacheFile: string;
  /**
   * Called with the bytes covered so far (read, or found unchanged in the cache): at least every 64 MiB,
   * every 1000 files, and once at the end, so an activity can heartbeat with it.
   */
  onProgress?: (bytesHashed: number) => void;
}

/** One cached hash: the file's identity when it was hashed, and its hash. */
const CachedHash = z.object({
  size: z.number(),
  mtimeMs: z.number(),
  ino: z.number(),
  sha256: z.string(),
});
type CachedHash = z.infer<typeof CachedHash>;

/** The cache file: absolute file path → its cached hash. */
const HashCache = z.record(z.string(), CachedHash);
type HashCache = z.infer<typeof HashCache>;

/**
 * Hashes one data set: a file's SHA-256, or a directory's manifest hash (the manifest is written into the run
 * directory). Reads the cache once and writes it back once, when it changed.
 *
 * @throws DataSetMissingError when `source` does not exist
 */
export async function hashDataSet(input: HashDataSetInput): Promise<RecordedData> {
  if (!DataName.safeParse(input.name).success) {
    throw new Error(`Data set name "${input.name}" is not a data set name (letters, digits, ".", "_", "-").`);
  }
  if (!path.isAbsolute(input.source)) {
    throw new Error(`Data set "${input.name}": source ${input.source} must be an absolute path.`);
  }
  const stats = await statOrMissing(input.name, input.source);
  const cache = new FileHashCache(input.cacheFile);
  const progress = new ProgressReporter(input.onProgress);
  let recorded: RecordedData;
  if (stats.isFile()) {
    const sha256 = await cache.hash(input.source, stats, progress);
    recorded = { name: input.name, source: input.source, kind: 'file', sha256, bytes: stats.size };
  } else if (stats.isDirectory()) {
    recorded = await hashDirectory(input, cache, progress);
  } else {
    throw new Error(`Data set "${input.name}": ${input.source} is neither a file nor a directory.`);
  }
  progress.finish();
  await cache.save();
  return recorded;
}

/**
 * The difference between a data set as hashed and the hash the spec expects, as a sentence naming the data
 * set and both hashes (as many leading digits as it takes to tell them apart); `undefined` when they match.
 */
export function verifyDataHash(recorded: RecordedData, expected: string): string | undefined {
  const wanted = expected.trim().toLowerCase();
  const found = recorded.sha256?.toLowerCase();
  if (found === wanted) return undefined;
  const where = `Data set "${recorded.name}" (${recorded.source})`;
  const fix = 'if the change is intended, update its `sha256` under `data:` in the spec.';
  if (found === undefined)
    return `${where} has no content hash to compare with ${prefix(wanted, 12)}…; ${fix}`;
  let differsAt = 0;
  while (differsAt < wanted.length && wanted[differsAt] === found[differsAt]) differsAt += 1;
  const shown = Math.max(12, differsAt + 1);
  const hashes = `expected sha256 ${prefix(wanted, shown)}…, found ${prefix(found, shown)}…`;
  return `${where} has changed: ${hashes}; ${fix}`;
}

function prefix(hash: string, length: number): string {
  return hash.slice(0, length);
}

async function statOrMissing(name: string, source: string): Promise<fs.Stats> {
  try {
    return await fs.promises.stat(source);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new DataSetMissingError(name, source);
    throw error;
  }
}

/** One manifest entry: a regular file, or a symlink recorded by the text it points to. */
interface ManifestEntry {
  kind: 'file' | 'symlink';
  /** Path below the data set's directory, with `/` separators. */
  relative: string;
  absolute: string;
}

async function hashDirectory(
  input: HashDataSetInput,
  cache: FileHashCache,
  progress: ProgressReporter,
): Promise<RecordedData> {
  const entries = await listDirectory(input.source);
  let manifest = '';
  let bytes = 0;
  for (const entry of entries) {
    let sha256: string;
    if (entry.kind === 'symlink') {
      // Not followed: the link is part of the data as written, and following it could leave the data set
      // or loop. Its line hashes the target text, so retargeting a link changes the manifest.
      sha256 = sha256Of(await fs.promises.readlink(entry.absolute));
    } else {
      const stats = await fs.promises.stat(entry.absolute);
      sha256 = await cache.hash(entry.absolute, stats, progress);
      bytes += stats.size;
    }
    manifest += `${sha256}  ${entry.relative}\n`;
    progress.fileDone();
  }
  cache.forgetMissingBelow(input.source, new Set(entries.map((entry) => entry.absolute)));
  const manifestFile = path.join(input.runDir, DATA_MANIFESTS_DIR, `${input.name}.txt`);
  await fs.promises.mkdir(path.dirname(manifestFile), { recursive: true });
  await writeFileAtomic(manifestFile, manifest);
  return {
    name: input.name,
    source: input.source,
    kind: 'directory',
    sha256: sha256Of(manifest),
    bytes,
    files: entries.length,
    manifest: path.relative(input.runDir, manifestFile).split(path.sep).join('/'),
  };
}

/**
 * Every regular file and symlink below `root`, sorted by relative path (with `/`) in code-unit order, which
 * does not depend on the locale, so every host writes the same manifest. Sockets, pipes and devices are not
 * data and are left out.
 */
async function listDirectory(root: string): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  const pending = [''];
  for (let relativeDir = pending.pop(); relativeDir !== undefined; relativeDir = pending.pop()) {
    const dirents = await fs.promises.readdir(path.join(root, relativeDir), { withFileTypes: true });
    for (const dirent of dirents) {
      const relative = relativeDir === '' ? dirent.name : `${relativeDir}/${dirent.name}`;
      const absolute = path.join(root, relative);
      if (dirent.isDirectory()) pending.push(relative);
      else if (dirent.isSymbolicLink()) entries.push({ kind: 'symlink', relative, absolute });
      else if (dirent.isFile()) entries.push({ kind: 'file', relative, absolute });
    }
  }
  return entries.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
}

/** The SHA-256 of a string's UTF-8 bytes, in hex. */
function sha256Of(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * A file's SHA-256 in hex, streamed so that any size fits in memory. `onBytes` is called with the size of
 * each chunk read.
 */
export async function sha256OfFile(file: string, onBytes?: (bytes: number) => void): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: READ_CHUNK_BYTES })) {
    const bytes = chunk as Buffer;
    hash.update(bytes);
    onBytes?.(bytes.length);
  }
  return hash.digest('hex');
}

/**
 * The hash cache of one call: read once at the start (missing or unreadable counts as empty), updated in
 * memory, written back once at the end when it changed. Concurrent calls may overwrite each other's additions
 * (the last writer wins); that only costs a re-read later, while the temp-file-and-rename write means a
 * reader never sees half a file.
 */
class FileHashCache {
  private readonly entries: HashCache;
  private changed = false;

  constructor(private readonly file: string) {
    this.entries = readHashCache(file);
  }

  /** The file's hash: the cached one when size, mtime and inode still match, else read and cached. */
  async hash(file: string, stats: fs.Stats, progress: ProgressReporter): Promise<string> {
    const cached = this.entries[file];
    if (
      cached &&
      cached.size === stats.size &&
      cached.mtimeMs === stats.mtimeMs &&
      cached.ino === stats.ino
    ) {
      progress.add(stats.size);
      return cached.sha256;
    }
    const sha256 = await sha256OfFile(file, (bytes) => progress.add(bytes));
    // A file that changed while it was read has a hash of neither version: use it for this record, but do
    // not cache it under the identity it had before the change.
    const after = await fs.promises.stat(file);
    if (after.size === stats.size && after.mtimeMs === stats.mtimeMs && after.ino === stats.ino) {
      this.entries[file] = { size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, sha256 };
    } else {
      delete this.entries[file];
    }
    this.changed = true;
    return sha256;
  }

  /** Drops entries for files below `dir` that are no longer there, so the cache does not grow forever. */
  forgetMissingBelow(dir: string, present: ReadonlySet<string>): void {
    const below = dir.endsWith(path.sep) ? dir : `${dir}${path.sep}`;
    for (const file of Object.keys(this.entries)) {
      if (file.startsWith(below) && !present.has(file)) {
        delete this.entries[file];
        this.changed = true;
      }
    }
  }

  /** Writes the cache back when this call changed it. */
  async save(): Promise<void> {
    if (!this.changed) return;
    await fs.promises.mkdir(path.dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, `${JSON.stringify(this.entries)}\n`);
  }
}

function readHashCache(file: string): HashCache {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  try {
    const parsed = HashCache.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

/** Calls `onProgress` with the bytes covered so far each time another 64 MiB or 1000 files are done. */
class ProgressReporter {
  private bytes = 0;
  private nextReportBytes = PROGRESS_STEP_BYTES;
  private filesSinceReport = 0;

  constructor(private readonly onProgress: ((bytesHashed: number) => void) | undefined) {}

  add(bytes: number): void {
    this.bytes += bytes;
    if (this.bytes >= this.nextReportBytes) this.report();
  }

  fileDone(): void {
    this.filesSinceReport += 1;
    if (this.filesSinceReport >= PROGRESS_STEP_FILES) this.report();
  }

  finish(): void {
    this.report();
  }

  private report(): void {
    this.nextReportBytes = (Math.floor(this.bytes / PROGRESS_STEP_BYTES) + 1) * PROGRESS_STEP_BYTES;
    this.filesSinceReport = 0;
    this.onProgress?.(this.bytes);
  }
}
