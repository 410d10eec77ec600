import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { WriteAheadLog } from '../../src/devserver/store';

const newFile = () => path.join(mkdtempSync(path.join(tmpdir(), 'labline-wal-')), 'devserver.wal');

async function replayAll(file: string): Promise<unknown[]> {
  const records: unknown[] = [];
  const log = await WriteAheadLog.open(file, (tx) => records.push(tx));
  await log.close();
  return records;
}

test('appended transactions replay in order after reopening', async () => {
  const file = newFile();
  const log = await WriteAheadLog.open(file, () => undefined);
  await Promise.all([log.append({ n: 1 }), log.append({ n: 2 }), log.append({ n: 3 })]);
  await log.close();
  expect(await replayAll(file)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
});

test('a rewrite replaces what the snapshot covers and keeps what was appended after it, in order', async () => {
  const file = newFile();
  const log = await WriteAheadLog.open(file, () => undefined);
  const inFlight = log.append({ n: 1 }); // being written when the rewrite starts
  const before = log.append({ n: 2 }); // queued behind it: the snapshot contains it
  const rewrite = log.rewrite([{ snapshot: [1, 2] }]);
  const after = log.append({ n: 3 }); // after the snapshot: must follow it
  await Promise.all([inFlight, before, rewrite, after]);
  await log.close();
  expect(await replayAll(file)).toEqual([{ snapshot: [1, 2] }, { n: 3 }]);
});

test('a torn last line (a crash mid-write) is skipped; everything before it replays', async () => {
  const file = newFile();
  writeFileSync(file, '{"n":1}\n{"n":2}\n{"n":');
  expect(await replayAll(file)).toEqual([{ n: 1 }, { n: 2 }]);
});

test('a corrupt line in the middle stops the server with the file, the record and its byte offset named', async () => {
  const file = newFile();
  writeFileSync(file, '{"n":1}\nnot json\n{"n":3}\n');
  await expect(WriteAheadLog.open(file, () => undefined)).rejects.toThrow(
    `${file} is damaged at record 2 (line 2, byte offset 8)`,
  );
  expect(readFileSync(file, 'utf8')).toContain('not json');
});
