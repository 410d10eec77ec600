import { formatDuration, formatListing, listingJson } from '../../src/client/cli-list';
import type { ExperimentListing } from '../../src/client/experiments';

const now = new Date('2026-12-03T12:00:00Z');
const rows: ExperimentListing[] = [
  {
    experimentId: 'exp-waiting',
    kind: 'experiment',
    stage: 'launch_review',
    status: 'RUNNING',
    name: 'waits',
    startTime: new Date('2026-12-03T11:58:30Z'),
    waitingFor: 'launch',
  },
  {
    experimentId: 'camp-old',
    kind: 'campaign',
    stage: 'completed',
    status: 'COMPLETED',
    startTime: new Date('2026-11-20T08:00:00Z'),
    closeTime: new Date('2026-11-21T10:30:00Z'),
    primaryMetric: 0.912345,
  },
];

test('list prints aligned columns: today as a time, older days as a date, durations, metric, review waited for', () => {
  expect(formatListing(rows, now, { color: false }).split('\n')).toEqual([
    'ID           KIND        STAGE          STARTED     DURATION  PRIMARY  WAITING FOR',
    'exp-waiting  experiment  launch_review  11:58 UTC   1m30s              launch decision',
    'camp-old     campaign    completed      2026-11-20  26h30m    0.9123',
  ]);
});

test('the stage is coloured only when asked, and the columns stay aligned', () => {
  const coloured = formatListing(rows, now, { color: true });
  expect(coloured).toContain('\u001b[33mlaunch_review\u001b[0m');
  expect(coloured).toContain('\u001b[32mcompleted    \u001b[0m');
  const ansi = new RegExp(`${String.fromCharCode(27)}\\[\\d+m`, 'g');
  expect(coloured.replace(ansi, '')).toBe(formatListing(rows, now, { color: false }));
});

test('list --json has a version and one object per row with ISO times and seconds', () => {
  expect(listingJson(rows, now)).toEqual({
    version: 1,
    experiments: [
      {
        id: 'exp-waiting',
        kind: 'experiment',
        name: 'waits',
        stage: 'launch_review',
        status: 'running',
        started: '2026-12-03T11:58:30.000Z',
        closed: null,
        duration_seconds: 90,
        primary_metric: null,
        waiting_for: 'launch',
      },
      {
        id: 'camp-old',
        kind: 'campaign',
        name: null,
        stage: 'completed',
        status: 'completed',
        started: '2026-11-20T08:00:00.000Z',
        closed: '2026-11-21T10:30:00.000Z',
        duration_seconds: 95_400,
        primary_metric: 0.912345,
        waiting_for: null,
      },
    ],
  });
});

test.each([
  [0, '0s'],
  [59_400, '59s'],
  [61_000, '1m01s'],
  [3_600_000, '1h00m'],
  [49 * 3_600_000, '2d01h'],
])('a duration of %i ms reads %s', (ms, text) => {
  expect(formatDuration(ms)).toBe(text);
});
