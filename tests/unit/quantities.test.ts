import {
  Duration,
  formatDuration,
  MAX_DURATION_SECONDS,
  parseDuration,
  parseMemorySize,
} from '../../src/experiment';

describe('parseDuration', () => {
  test.each([
    ['90s', 90],
    ['30m', 1800],
    ['2h', 7200],
    ['1d', 86_400],
    ['1w', 604_800],
    ['1h30m', 5400],
    ['1.5h', 5400],
    ['500ms', 0.5],
    [' 2h ', 7200],
  ])('reads %j as %d seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  test('refuses a duration longer than ten years, naming the maximum', () => {
    expect(() => parseDuration('99999999999w')).toThrow(
      /longer than the maximum of 3650d \(about 10 years\)/,
    );
  });

  test.each(['90', '2 hours', 'h', '', '-5m', '1h-30m', '2x'])(
    'refuses %j with the accepted forms in the message',
    (text) => {
      expect(() => parseDuration(text)).toThrow(/is not a duration: write a duration like "90s"/);
    },
  );
});

describe('formatDuration', () => {
  test.each([
    [5400, '1h30m'],
    [0.5, '500ms'],
    [0, '0s'],
    [90_061, '1d1h1m1s'],
  ])('writes %d seconds as %j, which parses back to the same seconds', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
    expect(parseDuration(text)).toBe(seconds);
  });
});

describe('Duration schema', () => {
  test('parses strings to seconds and keeps numbers of seconds, so a parsed value parses again unchanged', () => {
    expect(Duration.parse('2h')).toBe(7200);
    expect(Duration.parse(7200)).toBe(7200);
  });

  test('refuses negative numbers and unreadable strings', () => {
    expect(Duration.safeParse(-1).success).toBe(false);
    expect(Duration.safeParse('soon').success).toBe(false);
  });

  test('accepts up to ten years, which Temporal timers and JavaScript dates both represent', () => {
    expect(MAX_DURATION_SECONDS).toBe(3650 * 86_400);
    expect(Duration.parse('3650d')).toBe(MAX_DURATION_SECONDS);
    expect(Duration.parse(MAX_DURATION_SECONDS)).toBe(MAX_DURATION_SECONDS);
    const deadline = new Date(Date.now() + MAX_DURATION_SECONDS * 1000);
    expect(deadline.toISOString()).toMatch(/^20\d\d-/);
  });

  test.each(['99999999999w', '3651d', `${'9'.repeat(400)}s`, 1e12, MAX_DURATION_SECONDS + 1])(
    'refuses %j as longer than the maximum, naming the maximum',
    (value) => {
      const result = Duration.safeParse(value);
      expect(result.success).toBe(false);
      expect(result.error?.issues).toEqual([
        expect.objectContaining({ message: 'must be at most 3650d (about 10 years)' }),
      ]);
    },
  );
});

describe('parseMemorySize', () => {
  test.each([
    ['4G', 4 * 1024 ** 3],
    ['512M', 512 * 1024 ** 2],
    ['1.5Gi', 1.5 * 1024 ** 3],
    ['2GB', 2 * 1024 ** 3],
    ['16k', 16 * 1024],
  ])('reads %j with binary multiples', (text, bytes) => {
    expect(parseMemorySize(text)).toBe(bytes);
  });

  test('refuses a size without a unit', () => {
    expect(() => parseMemorySize('4096')).toThrow(/is not a memory size/);
  });
});
