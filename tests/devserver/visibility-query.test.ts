import {
  builtInSearchAttributes,
  parseVisibilityQuery,
  VisibilityQueryError,
  type SearchAttributeType,
  type VisibilityRecord,
} from '../../src/devserver/visibility-query';

const at = (iso: string): number => Date.parse(iso);

const customTypes = new Map<string, SearchAttributeType>([
  ['LablineStage', 'Keyword'],
  ['Owner', 'Keyword'],
  ['Order', 'Keyword'], // a reserved word as a name: only usable backquoted
  ['Notes', 'Text'],
  ['Tags', 'KeywordList'],
  ['Score', 'Double'],
  ['Priority', 'Int'],
  ['Approved', 'Bool'],
  ['Deadline', 'Datetime'],
]);

// Four ordinary executions and one that belongs to a system namespace division.
const records: VisibilityRecord[] = [
  {
    WorkflowId: 'exp-1',
    RunId: 'run-a',
    WorkflowType: 'experiment',
    ExecutionStatus: 'Running',
    StartTime: at('2024-05-01T10:00:00Z'),
    TaskQueue: 'labline',
    HistoryLength: 10,
    LablineStage: 'training',
    Owner: 'ada',
    Order: 'first',
    Notes: 'Loss diverged at step 1200; see my-business-id-foobar',
    Tags: ['gpu', 'seed-1'],
    Score: 0.75,
    Priority: 3,
    Approved: true,
    Deadline: at('2024-06-01T00:00:00Z'),
  },
  {
    WorkflowId: 'exp-2',
    RunId: 'run-b',
    WorkflowType: 'experiment',
    ExecutionStatus: 'Completed',
    StartTime: at('2024-05-02T10:00:00Z'),
    CloseTime: at('2024-05-02T11:30:00Z'),
    ExecutionDuration: 5400e9, // 1.5 h in nanoseconds
    TaskQueue: 'labline',
    HistoryLength: 120,
    ParentWorkflowId: 'campaign-1',
    BuildIds: ['build-1'],
    TemporalChangeVersion: ['fix-1'],
    LablineStage: 'writing',
    Owner: "O'Hara",
    Notes: 'Réport café ready',
    Tags: ['gpu'],
    Score: 0.9,
    Priority: 1,
    Approved: false,
    Deadline: at('2024-05-15T12:00:00.250Z'),
  },
  {
    // No custom attributes at all: every custom comparison meets a missing value.
    WorkflowId: 'exp-3',
    RunId: 'run-c',
    WorkflowType: 'experiment',
    ExecutionStatus: 'Failed',
    StartTime: at('2024-04-30T08:00:00Z'),
    CloseTime: at('2024-04-30T08:01:30Z'),
    ExecutionDuration: 90e9,
    TaskQueue: 'labline-gpu',
    HistoryLength: 200,
  },
  {
    WorkflowId: 'campaign-1',
    RunId: 'run-d',
    WorkflowType: 'campaign',
    ExecutionStatus: 'Running',
    StartTime: at('2024-05-02T09:00:00Z'),
    TaskQueue: 'labline',
    HistoryLength: 40,
    LablineStage: 'analysis',
    Owner: 'back\\slash',
    Notes: 'Ablation sweep: LR and warm-up',
    Tags: ['cpu'],
    Score: -0.5,
    Priority: 2,
  },
  {
    WorkflowId: 'temporal-sys-scheduler:nightly',
    RunId: 'run-e',
    WorkflowType: 'temporal-sys-scheduler-workflow',
    ExecutionStatus: 'Running',
    StartTime: at('2024-05-01T00:00:00Z'),
    TaskQueue: 'temporal-sys',
    TemporalNamespaceDivision: 'TemporalScheduler',
  },
];

const ALL = ['campaign-1', 'exp-1', 'exp-2', 'exp-3'];

/** WorkflowIds of the records the query matches, sorted so that the tables read as sets. */
function matching(query: string): string[] {
  const parsed = parseVisibilityQuery(query, customTypes);
  return records
    .filter((record) => parsed.matches(record))
    .map((record) => String(record.WorkflowId))
    .sort();
}

/** WorkflowIds of the four ordinary records in the query's order. */
function ordered(query: string, input: VisibilityRecord[] = records.slice(0, 4)): string[] {
  const parsed = parseVisibilityQuery(query, customTypes);
  return [...input].sort((a, b) => parsed.compare(a, b)).map((record) => String(record.WorkflowId));
}

function errorOf(query: string): VisibilityQueryError {
  try {
    parseVisibilityQuery(query, customTypes);
  } catch (error) {
    if (error instanceof VisibilityQueryError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(query)} to be refused`);
}

type Case = [query: string, expected: string[]];

describe('parseVisibilityQuery: filtering', () => {
  const table = (cases: Case[]): void => {
    test.each(cases)('%s', (query, expected) => {
      expect(matching(query)).toEqual([...expected].sort());
    });
  };

  describe('empty query matches every ordinary execution', () => {
    table([
      ['', ALL],
      ['   \n\t', ALL],
    ]);
  });

  describe('Keyword compares exactly, case-sensitively, in code point order', () => {
    table([
      ["WorkflowId = 'exp-1'", ['exp-1']],
      ["WorkflowId = 'EXP-1'", []],
      ["WorkflowId != 'exp-1'", ['campaign-1', 'exp-2', 'exp-3']],
      ["WorkflowId <> 'exp-1'", ['campaign-1', 'exp-2', 'exp-3']],
      ["WorkflowId < 'exp-2'", ['campaign-1', 'exp-1']],
      ["WorkflowId <= 'exp-2'", ['campaign-1', 'exp-1', 'exp-2']],
      ["WorkflowId > 'exp-2'", ['exp-3']],
      ["WorkflowId >= 'exp-2'", ['exp-2', 'exp-3']],
      ["WorkflowId IN ('exp-1', 'exp-3', 'nope')", ['exp-1', 'exp-3']],
      ["WorkflowId NOT IN ('exp-1', 'exp-3')", ['campaign-1', 'exp-2']],
      ["WorkflowId BETWEEN 'exp-1' AND 'exp-2'", ['exp-1', 'exp-2']],
      ["WorkflowId NOT BETWEEN 'exp-1' AND 'exp-2'", ['campaign-1', 'exp-3']],
      ["WorkflowId STARTS_WITH 'exp-'", ['exp-1', 'exp-2', 'exp-3']],
      ["WorkflowId NOT STARTS_WITH 'exp-'", ['campaign-1']],
      ["WorkflowId STARTS_WITH 'EXP'", []],
      // Temporal escapes LIKE wildcards, so _ and % are literal characters in a prefix.
      ["WorkflowId STARTS_WITH 'exp_'", []],
      ["WorkflowId STARTS_WITH 'exp%'", []],
      ["TaskQueue = 'labline-gpu'", ['exp-3']],
      ["ParentWorkflowId = 'campaign-1'", ['exp-2']],
    ]);
  });

  describe('a missing scalar value is SQL NULL: only IS NULL matches it', () => {
    table([
      ["LablineStage = 'training'", ['exp-1']],
      ["LablineStage != 'training'", ['campaign-1', 'exp-2']],
      ["NOT LablineStage = 'training'", ['campaign-1', 'exp-2']],
      ["LablineStage NOT IN ('training')", ['campaign-1', 'exp-2']],
      ["LablineStage NOT STARTS_WITH 't'", ['campaign-1', 'exp-2']],
      ["LablineStage NOT BETWEEN 'a' AND 'b'", ['exp-1', 'exp-2']],
      ['LablineStage IS NULL', ['exp-3']],
      ['LablineStage IS NOT NULL', ['campaign-1', 'exp-1', 'exp-2']],
      ['ParentWorkflowId IS NULL', ['campaign-1', 'exp-1', 'exp-3']],
      ['CloseTime IS NULL', ['campaign-1', 'exp-1']],
      ['Priority != 3', ['campaign-1', 'exp-2']],
      // Three-valued logic: UNKNOWN AND TRUE is UNKNOWN, and NOT UNKNOWN stays UNKNOWN...
      ["NOT (LablineStage = 'x' AND WorkflowId = 'exp-3')", ['campaign-1', 'exp-1', 'exp-2']],
      // ...while UNKNOWN OR TRUE is TRUE.
      ["LablineStage = 'x' OR WorkflowId = 'exp-3'", ['exp-3']],
    ]);
  });

  describe('string literals: both quotes, doubled quotes, backslash escapes; backquoted names', () => {
    table([
      ["Owner = 'O''Hara'", ['exp-2']],
      [`Owner = "O'Hara"`, ['exp-2']],
      ["Owner = 'O\\'Hara'", ['exp-2']],
      ["Owner = 'back\\\\slash'", ['campaign-1']],
      ['Owner = "ada"', ['exp-1']],
      ["`LablineStage` = 'writing'", ['exp-2']],
      ["`Order` = 'first'", ['exp-1']],
    ]);
  });

  describe('Int and Double compare numerically, ints and floats interchangeably', () => {
    table([
      ['Priority > 1', ['campaign-1', 'exp-1']],
      ['Priority >= 1 AND Priority < 3', ['campaign-1', 'exp-2']],
      ['Priority = 2.0', ['campaign-1']],
      ['Priority IN (1, 3)', ['exp-1', 'exp-2']],
      ['Priority BETWEEN 2 AND 3', ['campaign-1', 'exp-1']],
      ['HistoryLength > -1', ALL],
      ['HistoryLength <= 40', ['campaign-1', 'exp-1']],
      ['Score > 0.8', ['exp-2']],
      ['Score < 0', ['campaign-1']],
      ['Score >= -0.5', ['campaign-1', 'exp-1', 'exp-2']],
      ['Score BETWEEN .5 AND 1e0', ['exp-1', 'exp-2']],
      ['Score = 1', []],
    ]);
  });

  describe('Bool', () => {
    table([
      ['Approved = true', ['exp-1']],
      ['Approved = FALSE', ['exp-2']],
      ['Approved != true', ['exp-2']],
      ['Approved IN (true, false)', ['exp-1', 'exp-2']],
      ['Approved IS NULL', ['campaign-1', 'exp-3']],
    ]);
  });

  describe('Datetime takes RFC 3339 strings or epoch nanoseconds', () => {
    table([
      ["StartTime > '2024-05-01T12:00:00Z'", ['campaign-1', 'exp-2']],
      // 12:00+02:00 is 10:00Z, exactly exp-1's start.
      ["StartTime >= '2024-05-01T12:00:00+02:00'", ['campaign-1', 'exp-1', 'exp-2']],
      ["StartTime BETWEEN '2024-05-01T00:00:00Z' AND '2024-05-01T23:59:59.999999999Z'", ['exp-1']],
      ['StartTime < 1714521600000000000', ['exp-3']],
      ['StartTime = 1714557600000000000', ['exp-1']],
      // A running execution has no CloseTime, so a range on it leaves running executions out.
      ["CloseTime > '2024-01-01T00:00:00Z'", ['exp-2', 'exp-3']],
      ["Deadline = '2024-05-15T12:00:00.25Z'", ['exp-2']],
      ["Deadline > '2024-05-15T12:00:00.2500001Z'", ['exp-1']],
      ["Deadline < '2024-02-29T00:00:00Z'", []],
    ]);
  });

  describe('ExecutionStatus takes status names, proto names or enum numbers, ordered by enum number', () => {
    table([
      ["ExecutionStatus = 'Running'", ['campaign-1', 'exp-1']],
      ["ExecutionStatus != 'Running'", ['exp-2', 'exp-3']],
      ["ExecutionStatus IN ('Completed', 'Failed')", ['exp-2', 'exp-3']],
      ['ExecutionStatus = 2', ['exp-2']],
      ["ExecutionStatus = 'WORKFLOW_EXECUTION_STATUS_FAILED'", ['exp-3']],
      ["ExecutionStatus = 'ContinuedAsNew'", []],
      // Completed (2) and Failed (3) follow Running (1) in the enum, though not in the alphabet.
      ["ExecutionStatus > 'Running'", ['exp-2', 'exp-3']],
      ["ExecutionStatus BETWEEN 'Completed' AND 'Canceled'", ['exp-2', 'exp-3']],
    ]);
  });

  describe('ExecutionDuration takes nanoseconds or duration strings', () => {
    table([
      ["ExecutionDuration > '1h'", ['exp-2']],
      ["ExecutionDuration = '1h30m'", ['exp-2']],
      ["ExecutionDuration = '0.0625d'", ['exp-2']],
      ["ExecutionDuration >= '1.5h'", ['exp-2']],
      ["ExecutionDuration = '00:01:30'", ['exp-3']],
      ["ExecutionDuration = '90000000000'", ['exp-3']],
      ['ExecutionDuration < 100000000000', ['exp-3']],
      ["ExecutionDuration BETWEEN '1m' AND '2m'", ['exp-3']],
    ]);
  });

  describe('KeywordList: = means contains, IN contains any; a missing list contains nothing', () => {
    table([
      ["Tags = 'gpu'", ['exp-1', 'exp-2']],
      ["Tags = 'GPU'", []],
      ["Tags = 'seed'", []],
      ["Tags != 'gpu'", ['campaign-1', 'exp-3']],
      ["Tags IN ('cpu', 'seed-1')", ['campaign-1', 'exp-1']],
      ["Tags NOT IN ('gpu', 'cpu')", ['exp-3']],
      ["BuildIds = 'build-1'", ['exp-2']],
      ["TemporalChangeVersion = 'fix-1'", ['exp-2']],
      // Temporal resolves a built-in name with or without its `Temporal` prefix.
      ["ChangeVersion = 'fix-1'", ['exp-2']],
    ]);
  });

  describe('Text matches whole words, case- and accent-insensitively; a piece with punctuation is a phrase', () => {
    table([
      ["Notes = 'foobar'", ['exp-1']],
      ["Notes = 'foo'", []],
      ["Notes = 'LOSS'", ['exp-1']],
      ["Notes = 'cafe'", ['exp-2']],
      ["Notes = 'report'", ['exp-2']],
      ["Notes = 'warm-up'", ['campaign-1']],
      ["Notes = 'up-warm'", []],
      ["Notes = 'sweep nothing'", ['campaign-1']],
      ["Notes != 'foobar'", ['campaign-1', 'exp-2', 'exp-3']],
    ]);
  });

  describe('precedence: NOT binds tighter than AND, AND tighter than OR', () => {
    table([
      [
        "ExecutionStatus = 'Running' OR WorkflowType = 'experiment' AND Priority = 1",
        ['campaign-1', 'exp-1', 'exp-2'],
      ],
      [
        "WorkflowType = 'experiment' AND Priority = 1 OR ExecutionStatus = 'Running'",
        ['campaign-1', 'exp-1', 'exp-2'],
      ],
      ["(ExecutionStatus = 'Running' OR WorkflowType = 'experiment') AND Priority = 1", ['exp-2']],
      ["NOT ExecutionStatus = 'Running' AND WorkflowType = 'experiment'", ['exp-2', 'exp-3']],
      ["NOT (ExecutionStatus = 'Running' AND WorkflowType = 'experiment')", ['campaign-1', 'exp-2', 'exp-3']],
      ["NOT NOT WorkflowId = 'exp-1'", ['exp-1']],
      ["Priority BETWEEN 1 AND 2 AND WorkflowType = 'campaign'", ['campaign-1']],
      ["((WorkflowId = 'exp-1'))", ['exp-1']],
    ]);
  });

  describe('keywords are case-insensitive', () => {
    table([
      [
        "WorkflowId in ('exp-1') and Priority between 1 and 3 or WorkflowId starts_with 'camp'",
        ['campaign-1', 'exp-1'],
      ],
      ["LablineStage is not null And Tags Not In ('gpu')", ['campaign-1']],
      ['Approved Is Null oR Approved = True', ['campaign-1', 'exp-1', 'exp-3']],
    ]);
  });

  describe('aliases and the namespace division', () => {
    table([
      ["ScheduleId = 'exp-1'", ['exp-1']],
      // Executions in a namespace division (schedulers) are hidden unless the query names the division.
      ["WorkflowId STARTS_WITH 'temporal-sys'", []],
      ["TemporalNamespaceDivision = 'TemporalScheduler'", ['temporal-sys-scheduler:nightly']],
      [
        'TemporalNamespaceDivision IS NULL OR TemporalNamespaceDivision IS NOT NULL',
        [...ALL, 'temporal-sys-scheduler:nightly'],
      ],
    ]);
  });
});

describe('parseVisibilityQuery: ordering', () => {
  test('without ORDER BY: running first (newest start first), then CloseTime desc, StartTime desc, RunId asc', () => {
    const input: VisibilityRecord[] = [
      { RunId: 'r1', WorkflowId: 'closed-old', StartTime: 100, CloseTime: 200 },
      { RunId: 'r2', WorkflowId: 'running-old', StartTime: 100 },
      { RunId: 'r3', WorkflowId: 'running-new', StartTime: 300 },
      { RunId: 'r4', WorkflowId: 'closed-new', StartTime: 150, CloseTime: 400 },
      { RunId: 'r6', WorkflowId: 'closed-tie-b', StartTime: 160, CloseTime: 300 },
      { RunId: 'r5', WorkflowId: 'closed-tie-a', StartTime: 160, CloseTime: 300 },
      { RunId: 'r7', WorkflowId: 'closed-tie-start', StartTime: 170, CloseTime: 300 },
    ];
    expect(ordered("WorkflowId != 'x'", input)).toEqual([
      'running-new',
      'running-old',
      'closed-new',
      'closed-tie-start',
      'closed-tie-a',
      'closed-tie-b',
      'closed-old',
    ]);
  });

  test.each<Case>([
    ['ORDER BY Score DESC', ['exp-2', 'exp-1', 'campaign-1', 'exp-3']],
    // Missing values sort last in either direction.
    ['ORDER BY Score', ['campaign-1', 'exp-1', 'exp-2', 'exp-3']],
    ['order by StartTime asc', ['exp-3', 'exp-1', 'campaign-1', 'exp-2']],
    ['ORDER BY WorkflowType, Priority DESC', ['campaign-1', 'exp-1', 'exp-2', 'exp-3']],
    // Equal keys fall back to RunId descending: campaign-1 (run-d) before exp-1 (run-a).
    ["WorkflowType != 'x' ORDER BY ExecutionStatus DESC", ['exp-3', 'exp-2', 'campaign-1', 'exp-1']],
    ['ORDER BY Approved DESC', ['exp-1', 'exp-2', 'campaign-1', 'exp-3']],
    // A KeywordList sorts by its smallest item ascending and its largest descending.
    ['ORDER BY Tags ASC', ['campaign-1', 'exp-2', 'exp-1', 'exp-3']],
    ['ORDER BY Tags DESC', ['exp-1', 'exp-2', 'campaign-1', 'exp-3']],
  ])('%s', (query, expected) => {
    expect(ordered(query)).toEqual(expected);
  });

  test('ORDER BY alone filters nothing', () => {
    expect(matching('ORDER BY StartTime DESC')).toEqual(ALL);
  });

  test('the comparator is consistent: a record equals itself and the order is antisymmetric', () => {
    for (const query of ['', 'ORDER BY Score DESC, WorkflowId']) {
      const { compare } = parseVisibilityQuery(query, customTypes);
      for (const a of records) {
        expect(compare(a, a)).toBe(0);
        for (const b of records) expect(Math.sign(compare(a, b)) + Math.sign(compare(b, a))).toBe(0);
      }
    }
  });
});

describe('parseVisibilityQuery: GROUP BY', () => {
  test.each<[string, string[]]>([
    ['', []],
    ['GROUP BY ExecutionStatus', ['ExecutionStatus']],
    ["WorkflowType = 'experiment' group by ExecutionStatus", ['ExecutionStatus']],
  ])('%s groups by %j', (query, expected) => {
    expect(parseVisibilityQuery(query, customTypes).groupBy).toEqual(expected);
  });

  test('GROUP BY does not filter', () => {
    expect(matching('GROUP BY ExecutionStatus')).toEqual(ALL);
  });
});

describe('parseVisibilityQuery: errors', () => {
  const invalidExpression = 'invalid query: invalid expression: ';
  const notSupported = 'invalid query: operation is not supported: ';
  const malformed = 'invalid query: malformed SQL query: ';
  const statuses = 'valid values: Running, Completed, Failed, Canceled, Terminated, ContinuedAsNew, TimedOut';

  describe('unknown attributes are named', () => {
    test.each([
      ["Foo = 'x'", 'Foo'],
      ["workflowId = 'exp-1'", 'workflowId'], // names are case-sensitive
      ["toString = 'x'", 'toString'], // not found on Object.prototype
      ["Temporal = 'x'", 'Temporal'],
      ['ORDER BY Foo', 'Foo'],
    ])('%s', (query, name) => {
      expect(errorOf(query).message).toBe(
        `${invalidExpression}column name '${name}' is not a valid search attribute`,
      );
    });
  });

  describe('values of the wrong type', () => {
    test.each([
      ["Priority = 'high'", "Priority of type Int: the string 'high' (expected a number)"],
      ['Score > true', 'Score of type Double: the boolean TRUE (expected a number)'],
      ["Approved = 'true'", "Approved of type Bool: the string 'true' (expected TRUE or FALSE)"],
      ['WorkflowId = 42', 'WorkflowId of type Keyword: the number 42 (expected a quoted string)'],
      ["Tags IN ('gpu', 1)", 'Tags of type KeywordList: the number 1 (expected a quoted string)'],
      ['Notes = 1', 'Notes of type Text: the number 1 (expected a quoted string)'],
      [
        'StartTime > 1.5',
        "StartTime of type Datetime: the number 1.5 (expected an RFC 3339 string such as '2024-05-01T12:00:00Z', or integer epoch nanoseconds)",
      ],
      [
        'ExecutionStatus = true',
        "ExecutionStatus of type Keyword: the boolean TRUE (expected a status name such as 'Running')",
      ],
      [
        'ExecutionDuration > 1.5',
        "ExecutionDuration of type Int: the number 1.5 (expected integer nanoseconds or a duration string such as '1h30m')",
      ],
    ])('%s', (query, detail) => {
      expect(errorOf(query).message).toBe(
        `${invalidExpression}invalid value type for search attribute ${detail}`,
      );
    });

    test.each([
      ["ExecutionStatus = 'running'", `invalid ExecutionStatus value 'running' (${statuses})`],
      ['ExecutionStatus = 9', `invalid ExecutionStatus value 9 (${statuses})`],
      [
        "StartTime > '2024-05-01'",
        "unable to parse datetime '2024-05-01' for search attribute StartTime (expected RFC 3339, such as '2024-05-01T12:00:00Z')",
      ],
      [
        "Deadline = '2023-02-29T00:00:00Z'",
        "unable to parse datetime '2023-02-29T00:00:00Z' for search attribute Deadline (expected RFC 3339, such as '2024-05-01T12:00:00Z')",
      ],
      [
        "ExecutionDuration > 'forever'",
        "invalid duration value for search attribute ExecutionDuration: 'forever' (expected nanoseconds, or a duration such as '90s', '1h30m', '1.5d' or '01:30:00')",
      ],
      ["Notes = '   '", 'unexpected value for Text type search attribute (no tokens found)'],
      [
        'WorkflowId = NULL',
        "NULL is not a value for search attribute WorkflowId; use 'WorkflowId IS NULL' or 'WorkflowId IS NOT NULL'",
      ],
      ["'exp-1' = WorkflowId", "must be a column name but was the string 'exp-1'"],
      ['WorkflowId IS TRUE', "'IS' operator can only be used as 'IS NULL' or 'IS NOT NULL'"],
      ['WorkflowId', "incomplete expression: 'WorkflowId' needs a comparison, such as WorkflowId = 'value'"],
      [
        'Priority = 1 AND (WorkflowId)',
        "incomplete expression: 'WorkflowId' needs a comparison, such as WorkflowId = 'value'",
      ],
    ])('%s', (query, detail) => {
      expect(errorOf(query).message).toBe(`${invalidExpression}${detail}`);
    });
  });

  describe('operators the type does not support name the operator and the attribute', () => {
    test.each([
      ["Notes STARTS_WITH 'Loss'", 'STARTS_WITH', 'Text', 'Notes'],
      ["Notes > 'a'", '>', 'Text', 'Notes'],
      ["Notes IN ('a')", 'IN', 'Text', 'Notes'],
      ["Tags < 'z'", '<', 'KeywordList', 'Tags'],
      ["Tags STARTS_WITH 'g'", 'STARTS_WITH', 'KeywordList', 'Tags'],
      ["Priority STARTS_WITH '1'", 'STARTS_WITH', 'Int', 'Priority'],
      ["Priority NOT STARTS_WITH '1'", 'NOT STARTS_WITH', 'Int', 'Priority'],
      ['Approved STARTS_WITH true', 'STARTS_WITH', 'Bool', 'Approved'],
      ["WorkflowId LIKE 'exp%'", 'LIKE', 'Keyword', 'WorkflowId'],
      ["WorkflowId NOT REGEXP 'e'", 'NOT REGEXP', 'Keyword', 'WorkflowId'],
      ["WorkflowId <=> 'exp-1'", '<=>', 'Keyword', 'WorkflowId'],
      // The SQL stores keep the status as a number, so no prefix match on it.
      ["ExecutionStatus STARTS_WITH 'Run'", 'STARTS_WITH', 'Keyword', 'ExecutionStatus'],
    ])('%s', (query, operator, type, name) => {
      expect(errorOf(query).message).toBe(
        `${notSupported}operator '${operator}' not supported for ${type} type search attribute '${name}'`,
      );
    });

    test.each([
      ['Approved BETWEEN false AND true', 'Approved', 'Bool'],
      ["Notes BETWEEN 'a' AND 'b'", 'Notes', 'Text'],
      ["Tags NOT BETWEEN 'a' AND 'b'", 'Tags', 'KeywordList'],
    ])('%s', (query, name, type) => {
      expect(errorOf(query).message).toBe(
        `${invalidExpression}cannot do range condition on search attribute '${name}' of type ${type}`,
      );
    });
  });

  describe('unsupported constructs', () => {
    test.each([
      [
        'WorkflowId = exp1',
        "column name on the right side of comparison expression (did you forget to quote 'exp1'?)",
      ],
      ["lower(WorkflowId) = 'exp-1'", 'function expression'],
      ['WorkflowId = lower(WorkflowType)', 'nested func'],
      ["WorkflowId = 'exp-1' LIMIT 10", "'LIMIT' clause"],
      ['GROUP BY ExecutionStatus, TaskQueue', "'GROUP BY' clause supports only a single field"],
      ['GROUP BY WorkflowType', "'GROUP BY' clause is not supported for search attribute WorkflowType"],
      ['ORDER BY Notes', 'unable to sort by search attribute type Text'],
    ])('%s', (query, detail) => {
      expect(errorOf(query).message).toBe(`${notSupported}${detail}`);
    });
  });

  describe('syntax errors name the position and the token', () => {
    test.each([
      ["WorkflowId = 'exp-1' AND", 'syntax error at position 25 (end of query): expected a condition'],
      [
        "WorkflowId = 'exp-1' ANDD Priority = 1",
        "syntax error at position 22 near 'ANDD': expected AND, OR, GROUP BY or ORDER BY",
      ],
      ["(WorkflowId = 'exp-1'", "syntax error at position 22 (end of query): expected ')'"],
      ['WorkflowId IN ()', "syntax error at position 16 near ')': expected a value"],
      ["WorkflowId IN 'exp-1'", "syntax error at position 15 near ''exp-1'': expected '('"],
      ["WorkflowId = 'exp-1", 'unterminated string starting at position 14'],
      ['`WorkflowId = 1', 'unterminated quoted name starting at position 1'],
      ["WorkflowId # 'a'", "syntax error at position 12 near '#'"],
      ["WorkflowId ! 'a'", "syntax error at position 12 near '!'"],
      // A reserved word is not a name unless backquoted: ORDER starts the ORDER BY clause.
      ["Order = 'first'", "syntax error at position 7 near '=': expected BY"],
      ['Priority = 1 AND Limit = 2', "syntax error at position 18 near 'Limit': expected a condition"],
      [
        "WorkflowId NOT 'a'",
        "syntax error at position 16 near ''a'': expected IN, BETWEEN or STARTS_WITH after NOT",
      ],
      [
        "WorkflowId 'a'",
        "syntax error at position 12 near ''a'': expected an operator such as =, !=, <, IN, BETWEEN, STARTS_WITH or IS",
      ],
      ['Priority BETWEEN 1 OR 2', "syntax error at position 20 near 'OR': expected AND"],
      ['WorkflowId IS 1', "syntax error at position 15 near '1': expected NULL or NOT NULL"],
      ['ORDER BY', 'syntax error at position 9 (end of query): expected a search attribute name'],
      [
        "WorkflowId = 'a' ORDER BY StartTime GROUP BY ExecutionStatus",
        "syntax error at position 37 near 'GROUP': expected AND, OR, GROUP BY or ORDER BY",
      ],
      ['Priority = 1abc', "syntax error at position 12 near '1abc'"],
      // The whole query parses before any name is checked, as in Temporal.
      ["Foo = 'x' AND (", 'syntax error at position 16 (end of query): expected a condition'],
    ])('%s', (query, detail) => {
      expect(errorOf(query).message).toBe(`${malformed}${detail}`);
    });
  });

  test('errors are VisibilityQueryError instances with their class name', () => {
    const error = errorOf("Foo = 'x'");
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('VisibilityQueryError');
  });
});

describe('builtInSearchAttributes', () => {
  test.each<[string, SearchAttributeType]>([
    ['WorkflowId', 'Keyword'],
    ['ExecutionStatus', 'Keyword'],
    ['StartTime', 'Datetime'],
    ['CloseTime', 'Datetime'],
    ['HistoryLength', 'Int'],
    ['ExecutionDuration', 'Int'],
    ['BuildIds', 'KeywordList'],
    ['TemporalChangeVersion', 'KeywordList'],
    ['TemporalSchedulePaused', 'Bool'],
  ])('%s is %s', (name, type) => {
    expect(builtInSearchAttributes[name]).toBe(type);
  });

  test('built-in names win over a custom attribute of the same name', () => {
    const query = parseVisibilityQuery("WorkflowId = 'exp-1'", new Map([['WorkflowId', 'Int']]));
    expect(query.matches({ WorkflowId: 'exp-1' })).toBe(true);
  });

  test('Keyword order is code point order (UTF-8 byte order), not UTF-16 code unit order', () => {
    // U+1F600 is above U+FFFF, but its UTF-16 form starts with a surrogate (U+D83D) below U+FFFF.
    const query = parseVisibilityQuery("WorkflowId > '\uFFFF'", customTypes);
    expect(query.matches({ WorkflowId: '\u{1F600}' })).toBe(true);
  });

  test('an empty KeywordList counts as missing, as Temporal removes an attribute set to an empty list', () => {
    const isNull = parseVisibilityQuery('Tags IS NULL', customTypes);
    expect(isNull.matches({ Tags: [] })).toBe(true);
    expect(isNull.matches({ Tags: ['gpu'] })).toBe(false);
  });

  test('a custom ScheduleId replaces the ScheduleId → WorkflowId alias', () => {
    const query = parseVisibilityQuery("ScheduleId = 's-1'", new Map([['ScheduleId', 'Keyword']]));
    expect(query.matches({ WorkflowId: 'x', ScheduleId: 's-1' })).toBe(true);
    expect(query.matches({ WorkflowId: 's-1' })).toBe(false);
  });
});
