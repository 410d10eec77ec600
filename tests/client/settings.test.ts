import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { loadSettings, SettingsError } from '../../src/client/settings';

/** Loads `settings` from a fresh settings file. */
function load(settings: Record<string, unknown>) {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'labline-settings-')), 'labline.config.yaml');
  writeFileSync(file, stringify(settings));
  return loadSettings(file);
}

test('validation retries default to 8 attempts within 15 minutes, starting at 1 s', () => {
  expect(load({}).validation).toEqual({ max_attempts: 8, max_retry_seconds: 900, retry_interval_seconds: 1 });
  expect(load({ validation: { max_attempts: 1 } }).validation.max_attempts).toBe(1);
});

test('bad validation retry settings are rejected, each named by path with what to write instead', () => {
  let error: unknown;
  try {
    load({
      validation: { max_attempts: 2.5, max_retry_seconds: 0, retry_interval_seconds: 'soon', retries: 3 },
    });
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(SettingsError);
  const message = (error as Error).message;
  expect(message).toMatch(/validation\.max_attempts: must be a whole number of attempts/);
  expect(message).toMatch(/validation\.max_retry_seconds: must be more than 0 seconds/);
  expect(message).toMatch(/validation\.retry_interval_seconds: must be a number of seconds, like 1 or 0\.5/);
  expect(message).toMatch(/validation: .*"retries"/);
  expect(() => load({ validation: { max_retry_seconds: 10, retry_interval_seconds: 20 } })).toThrow(
    /validation\.retry_interval_seconds: the first wait \(20 s\) is longer than max_retry_seconds \(10 s\)/,
  );
});
