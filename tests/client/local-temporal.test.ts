import { Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { identityOf } from '../../src/activities/training/local-attempt';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseServerChoice } from '../../src/client/cli-start';
import { isServerRecordLive, readServerRecord, startLocalTemporal } from '../../src/client/local-temporal';
import { loadSettings } from '../../src/client/settings';
import { findTemporalCli } from '../../src/client/temporal-cli-server';

const dir = () => mkdtempSync(path.join(tmpdir(), 'labline-local-'));

describe('choosing the local Temporal', () => {
  test('--server takes auto, temporal-cli or embedded, and names the choices otherwise', () => {
    expect(parseServerChoice(undefined)).toBe('auto');
    expect(parseServerChoice('embedded')).toBe('embedded');
    expect(() => parseServerChoice('docker')).toThrow('--server docker: use auto, temporal-cli or embedded.');
  });

  test('the Temporal CLI is found through LABLINE_TEMPORAL_CLI, then PATH; a wrong explicit path is an error', () => {
    const bin = dir();
    const cli = path.join(bin, 'temporal');
    writeFileSync(cli, '#!/bin/sh\n');
    chmodSync(cli, 0o755);
    expect(findTemporalCli({ PATH: bin })).toBe(cli);
    expect(findTemporalCli({ LABLINE_TEMPORAL_CLI: cli, PATH: '' })).toBe(cli);
    expect(() => findTemporalCli({ LABLINE_TEMPORAL_CLI: path.join(bin, 'nope') })).toThrow(/no such file/);
  });

  test('the embedded server announces itself in server.json while it runs, and removes it when stopped', async () => {
    const dataDir = dir();
    const local = await startLocalTemporal({ dataDir, server: 'embedded' });
    try {
      expect(readServerRecord(dataDir)).toEqual({
        kind: 'embedded',
        address: local.address,
        pid: process.pid,
        owner_pid: process.pid,
        started_by: 'start',
        worker: false,
        owner: expect.objectContaining({ pid: process.pid }),
      });
      // Closed experiments stay for 30 days, not the real dev server's one.
      const connection = await Connection.connect({ address: local.address });
      try {
        const { config } = await connection.workflowService.describeNamespace({ namespace: 'default' });
        expect(tsToMs(config?.workflowExecutionRetentionTtl)).toBe(30 * 24 * 3600_000);
      } finally {
        await connection.close();
      }
    } finally {
      await local.stop();
    }
    expect(existsSync(path.join(dataDir, 'server.json'))).toBe(false);
    expect(readServerRecord(dataDir)).toBeUndefined();
  });

  test('a recorded owner whose pid now belongs to another process does not count as running', () => {
    const me = identityOf(process.pid);
    const record = {
      kind: 'embedded' as const,
      address: '127.0.0.1:1',
      pid: process.pid,
      owner_pid: process.pid,
    };
    expect(isServerRecordLive({ ...record, owner: me })).toBe(true);
    // Same pid, started at another time: a reboot or a reused pid.
    expect(isServerRecordLive({ ...record, owner: { ...me, startTicks: '1' } })).toBe(false);
  });

  test('a server.json that is not a server record is refused with how to fix it', () => {
    const dataDir = dir();
    writeFileSync(path.join(dataDir, 'server.json'), '{"kind":"docker"}');
    expect(() => readServerRecord(dataDir)).toThrow(/is not a Labline server record .*delete it/);
  });
});

describe('worker settings', () => {
  test('max_cached_workflows defaults to 50 and must be a whole number', () => {
    const cwd = dir();
    expect(loadSettings(undefined, cwd).worker.max_cached_workflows).toBe(50);
    const file = path.join(cwd, 'labline.config.yaml');
    writeFileSync(file, 'worker: { max_cached_workflows: -1 }\n');
    expect(() => loadSettings(file, cwd)).toThrow(/worker\.max_cached_workflows/);
  });

  test('temporal.ui_url must be an http(s) URL', () => {
    const cwd = dir();
    const file = path.join(cwd, 'labline.config.yaml');
    writeFileSync(file, 'temporal: { ui_url: "ftp://x" }\n');
    expect(() => loadSettings(file, cwd)).toThrow(/temporal\.ui_url/);
    writeFileSync(file, 'temporal: { ui_url: "https://cloud.temporal.io" }\n');
    expect(loadSettings(file, cwd).temporal.ui_url).toBe('https://cloud.temporal.io');
  });
});
