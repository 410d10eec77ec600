import { WorkflowNotFoundError } from '@temporalio/client';
import { mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { repairDataFile, WriteAheadLog } from '../../src/devserver/store';
import { cliScript, startTsProcess } from '../support/processes';
import { externalTemporal, startTestTemporal, uniqueTaskQueue } from '../support/temporal';
import { waitForSignalWorkflow } from './workflows';

const newFile = () => path.join(mkdtempSync(path.join(tmpdir(), 'labline-data-file-')), 'devserver.wal');

async function writeLog(file: string, transactions: unknown[]): Promise<void> {
  const log = await WriteAheadLog.open(file, () => undefined);
  for (const transaction of transactions) await log.append(transaction);
  await log.close();
}

async function replayAll(file: string): Promise<unknown[]> {
  const records: unknown[] = [];
  const log = await WriteAheadLog.open(file, (tx) => records.push(tx));
  await log.close();
  return records;
}

/** The byte offset where each line of `bytes` starts. */
function lineStarts(bytes: Buffer): number[] {
  const starts = [0];
  for (let i = 0; i < bytes.length - 1; i++) if (bytes[i] === 0x0a) starts.push(i + 1);
  return starts;
}

function overwrite(file: string, offset: number, byte: string): void {
  const bytes = readFileSync(file);
  bytes[offset] = byte.charCodeAt(0);
  writeFileSync(file, bytes);
}

async function openError(file: string): Promise<Error & Record<string, unknown>> {
  const error: unknown = await WriteAheadLog.open(file, () => undefined).then(
    (log) => log.close().then(() => undefined),
    (e: unknown) => e,
  );
  if (!(error instanceof Error)) throw new Error(`${file} opened without an error`);
  return error as Error & Record<string, unknown>;
}

describe('checksums on every record of the data file', () => {
  test('a changed byte inside a record is refused with the record number, its byte offset, what follows and the fix', async () => {
    const file = newFile();
    await writeLog(file, [{ n: 1 }, { n: 2, name: 'two' }, { n: 3 }]);
    const original = readFileSync(file);
    const starts = lineStarts(original);
    // Still valid JSON after the change: only a checksum can tell.
    overwrite(file, original.indexOf('"two"') + 1, 'T');
    const damaged = readFileSync(file);

    const error = await openError(file);
    expect(error).toMatchObject({ name: 'DataFileDamagedError', record: 2, offset: starts[1] });
    expect(error.message).toContain(`${file} is damaged at record 2 (line 2, byte offset ${starts[1]})`);
    expect(error.message).toContain('checksum does not match');
    expect(error.message).toContain(`1 more line (${original.length - starts[2]!} bytes)`);
    expect(error.message).toContain(`labline devserver --db ${file} --repair`);
    // Refusing to start changes nothing.
    expect(readFileSync(file).equals(damaged)).toBe(true);
  });

  test('a line break inside a record in mid-file is reported as a truncated record, with the lines after it', async () => {
    const file = newFile();
    await writeLog(file, [{ n: 1 }, { n: 2, text: 'a longer record' }, { n: 3 }, { n: 4 }]);
    const original = readFileSync(file);
    const starts = lineStarts(original);
    overwrite(file, original.indexOf('longer'), '\n');

    const error = await openError(file);
    expect(error).toMatchObject({ record: 2, offset: starts[1] });
    expect(error.message).toContain(`record 2 (line 2, byte offset ${starts[1]})`);
    expect(error.message).toContain('truncated');
    // The rest of record 2 on a line of its own, then records 3 and 4.
    expect(error.message).toMatch(/3 more lines \(\d+ bytes\), 2 of them intact records/);
    expect(error.message).toContain('--repair');
  });

  test('a record without a checksum after records with one is refused as unparsable', async () => {
    const file = newFile();
    await writeLog(file, [{ n: 1 }]);
    writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from('{"n":2}\n')]));
    const error = await openError(file);
    expect(error).toMatchObject({ record: 2 });
    expect(error.message).toContain('unparsable');
  });

  test('a damaged last record that ends in a line break is refused, not dropped as torn', async () => {
    const file = newFile();
    await writeLog(file, [{ n: 1 }, { n: 22 }]);
    const original = readFileSync(file);
    overwrite(file, original.lastIndexOf('22'), '7');
    const error = await openError(file);
    expect(error).toMatchObject({ record: 2 });
    expect(error.message).toContain('Nothing follows it');
  });

  test('a last record whose line break was changed into another byte is refused, not dropped as torn', async () => {
    const file = newFile();
    await writeLog(file, [{ n: 1 }, { n: 2 }]);
    overwrite(file, readFileSync(file).length - 1, 'x');
    const error = await openError(file);
    expect(error).toMatchObject({ record: 2 });
    expect(error.message).toContain('longer than its header declares');
  });
});

describe('torn last records (a crash in the middle of a write)', () => {
  test('a torn last record is dropped without an error, and records appended afterwards replay after the intact ones', async () => {
    const file = newFile();
    await writeLog(file, [{ n: 1 }, { n: 2 }, { n: 3, text: 'torn in the middle' }]);
    truncateSync(file, readFileSync(file).indexOf('torn'));
    const log = await WriteAheadLog.open(file, () => undefined);
    await log.append({ n: 4 });
    await log.close();
    expect(await replayAll(file)).toEqual([{ n: 1 }, { n: 2 }, { n: 4 }]);
  });

  test('a torn last record cut inside its checksum header is dropped without an error', async () => {
    const file = newFile();
    await writeLog(file, [{ n: 1 }]);
    writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from('3fa0')]));
    expect(await replayAll(file)).toEqual([{ n: 1 }]);
  });

  test('a last record that is whole but for its line break is kept', async () => {
    const file = newFile();
    await writeLog(file, [{ n: 1 }, { n: 2 }]);
    truncateSync(file, readFileSync(file).length - 1);
    const log = await WriteAheadLog.open(file, () => undefined);
    await log.append({ n: 3 });
    await log.close();
    expect(await replayAll(file)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });
});

describe('data files written before checksums', () => {
  test('they replay, and the next rewrite and every append carry checksums', async () => {
    const file = newFile();
    writeFileSync(file, '{"n":1}\n{"n":2}\n');
    const replayed: unknown[] = [];
    const log = await WriteAheadLog.open(file, (tx) => replayed.push(tx));
    expect(replayed).toEqual([{ n: 1 }, { n: 2 }]);
    await log.rewrite(replayed);
    await log.append({ n: 3 });
    await log.close();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^[0-9a-f]{8} \d+ \{/);
    expect(await replayAll(file)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });
});

describe('repairDataFile', () => {
  test('keeps the intact records before the first damaged one and moves that one and the rest aside, byte for byte', async () => {
    const file = newFile();
    await writeLog(file, [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    const original = readFileSync(file);
    const starts = lineStarts(original);
    overwrite(file, starts[2]! + 12, '\n');
    const damaged = readFileSync(file);

    const repair = await repairDataFile(file, new Date('2030-01-02T03:04:05.678Z'));
    const aside = `${file}.corrupt-2030-01-02T03-04-05-678Z`;
    expect(repair).toMatchObject({ file, keptRecords: 2, keptBytes: starts[2], moved: { file: aside } });
    expect(readFileSync(file).equals(original.subarray(0, starts[2]))).toBe(true);
    expect(readFileSync(aside).equals(damaged.subarray(starts[2]))).toBe(true);
    expect(await replayAll(file)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(repair.message).toContain(`kept the 2 intact records before record 3 (${starts[2]} bytes)`);
    expect(repair.message).toContain(`moved record 3 and the 2 lines after it`);
    expect(repair.message).toContain(aside);
  });

  test('on an intact file it changes nothing and says so', async () => {
    const file = newFile();
    await writeLog(file, [{ n: 1 }, { n: 2 }]);
    const original = readFileSync(file);
    const repair = await repairDataFile(file);
    expect(repair.moved).toBeUndefined();
    expect(repair.message).toContain('intact (2 records');
    expect(readFileSync(file).equals(original)).toBe(true);
    expect(readdirSync(path.dirname(file))).toEqual([path.basename(file)]);
  });
});

function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  const cli = startTsProcess(cliScript, args);
  // 'close', not 'exit': by then stdout and stderr are read to their end.
  return new Promise((resolve) => cli.child.once('close', (code) => resolve({ code, output: cli.output() })));
}

// The embedded server's own write-ahead log; a real Temporal keeps its data in SQLite.
(externalTemporal ? describe.skip : describe)(
  'labline devserver --repair (embedded only: its own data file)',
  () => {
    test('a damaged data file stops the server with the report; --repair keeps the intact prefix and the server then starts with its workflows', async () => {
      const db = newFile();
      const taskQueue = uniqueTaskQueue();
      const keptId = `kept-${taskQueue}`;
      const lostId = `after-damage-${taskQueue}`;
      const first = await startTestTemporal({ db });
      try {
        await first.client.workflow.start(waitForSignalWorkflow, { taskQueue, workflowId: keptId });
      } finally {
        await first.stop();
      }
      const second = await startTestTemporal({ db });
      const keptBytes = statSync(db).size; // compacted on start: one record per workflow
      try {
        await second.client.workflow.start(waitForSignalWorkflow, { taskQueue, workflowId: lostId });
      } finally {
        await second.stop();
      }
      const original = readFileSync(db);
      const damagedAt = original.indexOf(lostId, keptBytes);
      expect(damagedAt).toBeGreaterThan(keptBytes);
      overwrite(db, damagedAt, 'A');
      const damaged = readFileSync(db);
      const keptRecords = lineStarts(original.subarray(0, keptBytes)).length;

      await expect(startTestTemporal({ db })).rejects.toThrow(
        `damaged at record ${keptRecords + 1} (line ${keptRecords + 1}, byte offset ${keptBytes})`,
      );
      const refused = await runCli(['devserver', '--db', db, '--port', '0']);
      expect(refused.code).toBe(2);
      expect(refused.output).toContain(`labline devserver --db ${db} --repair`);

      const repaired = await runCli(['devserver', '--db', db, '--repair']);
      expect(repaired.code).toBe(0);
      expect(repaired.output).toContain(`kept the ${keptRecords} intact records`);
      const [aside] = readdirSync(path.dirname(db)).filter((name) => name.includes('.corrupt-'));
      expect(aside).toBeDefined();
      expect(repaired.output).toContain(aside);
      expect(readFileSync(db).equals(original.subarray(0, keptBytes))).toBe(true);
      expect(readFileSync(path.join(path.dirname(db), aside!)).equals(damaged.subarray(keptBytes))).toBe(
        true,
      );

      const third = await startTestTemporal({ db });
      try {
        expect((await third.client.workflow.getHandle(keptId).describe()).status.name).toBe('RUNNING');
        await expect(third.client.workflow.getHandle(lostId).describe()).rejects.toBeInstanceOf(
          WorkflowNotFoundError,
        );
      } finally {
        await third.stop();
      }
    });

    test('a data file written before checksums loads with its workflows and is rewritten with a checksum on every record', async () => {
      const db = newFile();
      const taskQueue = uniqueTaskQueue();
      const workflowId = `old-format-${taskQueue}`;
      const first = await startTestTemporal({ db });
      try {
        await first.client.workflow.start(waitForSignalWorkflow, { taskQueue, workflowId });
      } finally {
        await first.stop();
      }
      const withoutChecksums = readFileSync(db, 'utf8').replace(/^[0-9a-f]{8} \d+ /gm, '');
      expect(withoutChecksums.split('\n')[0]).toMatch(/^\{/);
      writeFileSync(db, withoutChecksums);

      const second = await startTestTemporal({ db });
      try {
        expect((await second.client.workflow.getHandle(workflowId).describe()).status.name).toBe('RUNNING');
      } finally {
        await second.stop();
      }
      const lines = readFileSync(db, 'utf8').trimEnd().split('\n');
      for (const line of lines) expect(line).toMatch(/^[0-9a-f]{8} \d+ \{/);
    });
  },
);
