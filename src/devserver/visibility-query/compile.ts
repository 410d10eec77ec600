// Turns a parsed query into a predicate over visibility records and a sort comparator, checking every
// name, operator and value against the attribute's type the way Temporal's query converter does
// (temporalio/temporal `common/persistence/visibility/store/query/converter.go`).
//
// Missing values follow the SQLite store that `temporal server start-dev` runs on:
// - Scalar attributes (Keyword, Int, Double, Bool, Datetime) are SQL columns, so a missing value is
//   NULL and comparisons with it are UNKNOWN under SQL's three-valued logic: `X = 'a'`, `X != 'a'`,
//   `X NOT IN (…)`, `NOT X = 'a'` all leave out a record without X. Only IS NULL matches it.
// - KeywordList and Text attributes are matched through `rowid IN (SELECT rowid FROM <fts table> …)`
//   (`common/persistence/sql/sqlplugin/sqlite/query_converter.go`), which is never UNKNOWN: a missing
//   list or text contains nothing, so `BuildIds != 'x'` and `BuildIds NOT IN (…)` match it.
// - CloseTime of a running execution is missing too. Temporal's legacy SQL converter
//   (`store/sql/query_converter_legacy.go`, still the default) compares COALESCE(close_time,
//   '9999-12-31') instead, so there `CloseTime > X` also returns running executions; the unified
//   converter and Elasticsearch do not, and neither does this module.
//
// ORDER BY is refused by the SQL stores ("operation is not supported: 'ORDER BY' clause") and
// implemented only by Elasticsearch; this module implements it, with Elasticsearch's rules.
import {
  builtInSearchAttributes,
  EXECUTION_DURATION,
  EXECUTION_STATUS,
  invalidExpression,
  isStatusCode,
  NAMESPACE_DIVISION,
  notSupported,
  statusCode,
  statusNames,
  type SearchAttributeType,
  type VisibilityRecord,
} from './model';
import type { ComparisonOperator, Condition, Literal, Operand, OrderTerm, QueryTree } from './parser';
import {
  compareCodePoints,
  containsPhrase,
  nanosTextToMillis,
  parseDurationNanos,
  parseRfc3339Millis,
  textTokens,
} from './values';

/** SQL truth value: `null` is UNKNOWN. A record matches only when the WHERE condition is `true`. */
type Truth = boolean | null;
type Predicate = (record: VisibilityRecord) => Truth;
/** A comparable form of a value: numbers for numeric, time, Bool and status values; strings otherwise. */
type Scalar = number | string;
type Comparator = (a: VisibilityRecord, b: VisibilityRecord) => number;

/** A search attribute as resolved: the name the user wrote, the record key, and the type. */
interface Column {
  readonly alias: string;
  readonly field: string;
  readonly type: SearchAttributeType;
}

/** What the rest of the server needs from a query. */
export interface CompiledQuery {
  /** The WHERE condition; undefined when the query has none. */
  readonly predicate: Predicate | undefined;
  /** The ORDER BY comparator; undefined when the query has none. */
  readonly orderBy: Comparator | undefined;
  /** GROUP BY record keys (at most one). */
  readonly groupBy: string[];
  /** Whether the query names TemporalNamespaceDivision, which turns off the implicit `IS NULL` filter. */
  readonly mentionsNamespaceDivision: boolean;
}

type Operator = ComparisonOperator | 'IN' | 'NOT IN';

// Operators each type accepts (`supported*Operators` in converter.go).
const numericOperators: readonly Operator[] = ['=', '!=', '<', '<=', '>', '>=', 'IN', 'NOT IN'];
const operatorsByType: Readonly<Record<SearchAttributeType, readonly Operator[]>> = {
  Keyword: [...numericOperators, 'STARTS_WITH', 'NOT STARTS_WITH'],
  KeywordList: ['=', '!=', 'IN', 'NOT IN'],
  Text: ['=', '!='],
  Int: numericOperators,
  Double: numericOperators,
  Bool: numericOperators,
  Datetime: numericOperators,
};
// BETWEEN is allowed on these only (`supportedTypesRangeCond`).
const rangeTypes: readonly SearchAttributeType[] = ['Datetime', 'Double', 'Int', 'Keyword'];
// GROUP BY is allowed on these only (`groupByFieldAllowlist` and `groupByFieldPrefixAllowlist`).
const groupByFields: readonly string[] = [EXECUTION_STATUS, NAMESPACE_DIVISION];
const groupByFieldPrefix = 'TemporalLowCardinalityKeyword';

const RESERVED_PREFIX = 'Temporal';
const SCHEDULE_ID = 'ScheduleId';

/** Checks a parsed query against the attribute types and builds its predicate and comparator. */
export function compileQuery(
  tree: QueryTree,
  customTypes: ReadonlyMap<string, SearchAttributeType>,
): CompiledQuery {
  const compiler = new Compiler(customTypes);
  // Same order as Temporal: WHERE, then GROUP BY, then ORDER BY, so the first error reported matches.
  const predicate = tree.where === undefined ? undefined : compiler.condition(tree.where);
  const groupBy = compiler.groupBy(tree.groupBy);
  const orderBy = tree.orderBy.length === 0 ? undefined : compiler.orderBy(tree.orderBy);
  return { predicate, orderBy, groupBy, mentionsNamespaceDivision: compiler.mentionsNamespaceDivision };
}

/** Temporal's default order: running first, then CloseTime, then StartTime (both newest first), then RunId. */
export function compareDefault(a: VisibilityRecord, b: VisibilityRecord): number {
  // SQL orders by COALESCE(close_time, '9999-12-31') DESC, start_time DESC, run_id; Elasticsearch sorts
  // CloseTime and StartTime DESC with missing values first. Both put open executions first.
  return (
    compareMissingFirstDescending(timeOf(a, 'CloseTime'), timeOf(b, 'CloseTime')) ||
    compareMissingFirstDescending(timeOf(a, 'StartTime'), timeOf(b, 'StartTime')) ||
    compareCodePoints(stringOf(a, 'RunId'), stringOf(b, 'RunId'))
  );
}

class Compiler {
  mentionsNamespaceDivision = false;

  constructor(private readonly customTypes: ReadonlyMap<string, SearchAttributeType>) {}

  condition(condition: Condition): Predicate {
    switch (condition.kind) {
      case 'and': {
        const left = this.condition(condition.left);
        const right = this.condition(condition.right);
        return (record) => and(left(record), right(record));
      }
      case 'or': {
        const left = this.condition(condition.left);
        const right = this.condition(condition.right);
        return (record) => or(left(record), right(record));
      }
      case 'not': {
        const operand = this.condition(condition.operand);
        return (record) => not(operand(record));
      }
      case 'compare':
        return this.comparison(condition.left, condition.operator, condition.right);
      case 'in':
        return this.membership(condition.left, condition.negated, condition.values);
      case 'between':
        return this.range(condition.left, condition.negated, condition.from, condition.to);
      case 'isNull': {
        const column = this.column(condition.left);
        const negated = condition.negated;
        return (record) => isMissing(valueOf(record, column.field)) !== negated;
      }
      case 'isBoolean':
        this.column(condition.left);
        throw invalidExpression("'IS' operator can only be used as 'IS NULL' or 'IS NOT NULL'");
      case 'operand':
        throw this.incomplete(condition.operand);
    }
  }

  groupBy(operands: Operand[]): string[] {
    if (operands.length > 1) throw notSupported("'GROUP BY' clause supports only a single field");
    return operands.map((operand) => {
      const column = this.column(operand);
      if (!groupByFields.includes(column.field) && !column.field.startsWith(groupByFieldPrefix)) {
        throw notSupported(`'GROUP BY' clause is not supported for search attribute ${column.alias}`);
      }
      return column.field;
    });
  }

  orderBy(terms: OrderTerm[]): Comparator {
    const keys = terms.map((term) => {
      const column = this.column(term.operand);
      if (column.type === 'Text') throw notSupported('unable to sort by search attribute type Text');
      return { column, descending: term.descending };
    });
    return (a, b) => {
      for (const { column, descending } of keys) {
        const x = sortKey(column, a, descending);
        const y = sortKey(column, b, descending);
        // Elasticsearch, the store that implements ORDER BY, sorts missing values last either way.
        if (x === undefined || y === undefined) {
          if (x !== y) return x === undefined ? 1 : -1;
          continue;
        }
        const order = compareScalars(x, y);
        if (order !== 0) return descending ? -order : order;
      }
      // Elasticsearch's explicit tiebreaker after a custom ORDER BY: RunId descending.
      return compareCodePoints(stringOf(b, 'RunId'), stringOf(a, 'RunId'));
    };
  }

  private comparison(left: Operand, operator: ComparisonOperator, right: Operand): Predicate {
    const column = this.column(left);
    this.checkOperator(column, operator);
    const field = column.field;

    if (column.type === 'KeywordList') {
      const wanted = this.stringValue(column, right);
      return (record) => listOf(valueOf(record, field)).includes(wanted) === (operator === '=');
    }
    if (column.type === 'Text') {
      const phrases = this.textPhrases(column, right);
      return (record) => matchesText(valueOf(record, field), phrases) === (operator === '=');
    }
    if (operator === 'STARTS_WITH' || operator === 'NOT STARTS_WITH') {
      const prefix = this.stringValue(column, right);
      return (record) => {
        const value = scalarOf(column, valueOf(record, field));
        if (typeof value !== 'string') return null;
        return value.startsWith(prefix) === (operator === 'STARTS_WITH');
      };
    }
    const wanted = this.value(column, right);
    return (record) => {
      const value = scalarOf(column, valueOf(record, field));
      return value === undefined ? null : holds(operator, compareScalars(value, wanted));
    };
  }

  private membership(left: Operand, negated: boolean, operands: Operand[]): Predicate {
    const column = this.column(left);
    this.checkOperator(column, negated ? 'NOT IN' : 'IN');
    const field = column.field;

    if (column.type === 'KeywordList') {
      // IN means "contains any of", NOT IN "contains none of" (Postgres `@>` joined by OR; SQLite FTS OR).
      const wanted = operands.map((operand) => this.stringValue(column, operand));
      return (record) => {
        const list = listOf(valueOf(record, field));
        return wanted.some((item) => list.includes(item)) !== negated;
      };
    }
    const wanted = operands.map((operand) => this.value(column, operand));
    return (record) => {
      const value = scalarOf(column, valueOf(record, field));
      if (value === undefined) return null;
      return wanted.some((item) => compareScalars(value, item) === 0) !== negated;
    };
  }

  private range(left: Operand, negated: boolean, fromOperand: Operand, toOperand: Operand): Predicate {
    const column = this.column(left);
    if (!rangeTypes.includes(column.type)) {
      throw invalidExpression(
        `cannot do range condition on search attribute '${column.alias}' of type ${column.type}`,
      );
    }
    const from = this.value(column, fromOperand);
    const to = this.value(column, toOperand);
    return (record) => {
      const value = scalarOf(column, valueOf(record, column.field));
      if (value === undefined) return null;
      const inside = compareScalars(value, from) >= 0 && compareScalars(value, to) <= 0;
      return inside !== negated;
    };
  }

  private checkOperator(column: Column, operator: Operator): void {
    const allowed = operatorsByType[column.type];
    // A status is stored as a number in SQL, so Temporal cannot turn STARTS_WITH into LIKE for it.
    const prefixOnStatus = column.field === EXECUTION_STATUS && operator.endsWith('STARTS_WITH');
    if (!allowed.includes(operator) || prefixOnStatus) {
      throw notSupported(
        `operator '${operator}' not supported for ${column.type} type search attribute '${column.alias}'`,
      );
    }
  }

  /** Resolves a search attribute name the way Temporal's `ResolveSearchAttributeAlias` does. */
  private column(operand: Operand): Column {
    if (operand.kind === 'function') throw notSupported('function expression');
    if (operand.kind !== 'column') {
      throw invalidExpression(`must be a column name but was ${describeLiteral(operand)}`);
    }
    const column = this.resolve(operand.name);
    if (column.field === NAMESPACE_DIVISION) this.mentionsNamespaceDivision = true;
    return column;
  }

  private resolve(alias: string): Column {
    // Custom attributes first, unless the name is a built-in one (Temporal's `IsMappable`).
    const custom = this.customTypes.get(alias);
    if (builtInType(alias) === undefined && custom !== undefined)
      return { alias, field: alias, type: custom };
    // ScheduleId means the schedule's workflow id unless a custom ScheduleId exists (handled above).
    if (alias === SCHEDULE_ID) return { alias, field: 'WorkflowId', type: 'Keyword' };
    // Built-ins, with or without the reserved `Temporal` prefix (`ChangeVersion` finds
    // `TemporalChangeVersion`).
    const candidates = [alias, RESERVED_PREFIX + alias];
    if (alias.startsWith(RESERVED_PREFIX)) candidates.push(alias.slice(RESERVED_PREFIX.length));
    for (const field of candidates) {
      const type = builtInType(field);
      if (type !== undefined) return { alias, field, type };
    }
    throw invalidExpression(`column name '${alias}' is not a valid search attribute`);
  }

  /** Converts a literal to the comparable form of the column's type, refusing what Temporal refuses. */
  private value(column: Column, operand: Operand): Scalar {
    const literal = this.literal(column, operand);
    if (column.field === EXECUTION_STATUS) return statusValue(column, literal);
    if (column.field === EXECUTION_DURATION) return durationValue(column, literal);
    switch (column.type) {
      case 'Keyword':
      case 'KeywordList':
      case 'Text':
        if (literal.kind === 'string') return literal.value;
        break;
      case 'Int':
      case 'Double':
        if (literal.kind === 'number') return literal.value;
        break;
      case 'Bool':
        if (literal.kind === 'bool') return literal.value ? 1 : 0;
        break;
      case 'Datetime':
        if (literal.kind === 'string') {
          const millis = parseRfc3339Millis(literal.value);
          if (millis === undefined) {
            throw invalidExpression(
              `unable to parse datetime '${literal.value}' for search attribute ${column.alias} ` +
                "(expected RFC 3339, such as '2024-05-01T12:00:00Z')",
            );
          }
          return millis;
        }
        // Temporal reads an integer as epoch nanoseconds (`time.Unix(0, n)`).
        if (literal.kind === 'number' && literal.integer) return nanosTextToMillis(literal.text);
        break;
    }
    throw wrongValueType(column, literal);
  }

  private stringValue(column: Column, operand: Operand): string {
    const literal = this.literal(column, operand);
    if (literal.kind !== 'string') throw wrongValueType(column, literal);
    return literal.value;
  }

  /**
   * A Text query value → phrases. The SQL stores split the value at spaces and match if any piece
   * matches (`TokenizeTextQueryString`, then an FTS `OR`); SQLite's FTS5 then tokenizes each piece
   * as a phrase, so `'error-rate'` must appear as the consecutive tokens `error rate`.
   */
  private textPhrases(column: Column, operand: Operand): string[][] {
    const pieces = this.stringValue(column, operand)
      .split(' ')
      .filter((piece) => piece !== '');
    if (pieces.length === 0) {
      throw invalidExpression('unexpected value for Text type search attribute (no tokens found)');
    }
    return pieces.map(textTokens);
  }

  private literal(column: Column, operand: Operand): Literal {
    if (operand.kind === 'column') {
      throw notSupported(
        `column name on the right side of comparison expression (did you forget to quote '${operand.name}'?)`,
      );
    }
    if (operand.kind === 'function') throw notSupported('nested func');
    if (operand.kind === 'null') {
      throw invalidExpression(
        `NULL is not a value for search attribute ${column.alias}; ` +
          `use '${column.alias} IS NULL' or '${column.alias} IS NOT NULL'`,
      );
    }
    return operand;
  }

  private incomplete(operand: Operand): Error {
    if (operand.kind === 'function') return notSupported('function expression');
    if (operand.kind === 'column') {
      const column = this.column(operand);
      return invalidExpression(
        `incomplete expression: '${column.alias}' needs a comparison, such as ${column.alias} = 'value'`,
      );
    }
    return invalidExpression(`incomplete expression: ${describeLiteral(operand)} is not a condition`);
  }
}

function statusValue(column: Column, literal: Literal): number {
  const valid = `valid values: ${statusNames.join(', ')}`;
  if (literal.kind === 'string') {
    const code = statusCode(literal.value);
    if (code === undefined) {
      throw invalidExpression(`invalid ${EXECUTION_STATUS} value '${literal.value}' (${valid})`);
    }
    return code;
  }
  // Temporal also accepts the enum number (`ExecutionStatus = 1`).
  if (literal.kind === 'number' && literal.integer) {
    if (!isStatusCode(literal.value)) {
      throw invalidExpression(`invalid ${EXECUTION_STATUS} value ${literal.text} (${valid})`);
    }
    return literal.value;
  }
  throw wrongValueType(column, literal);
}

function durationValue(column: Column, literal: Literal): number {
  if (literal.kind === 'number' && literal.integer) return literal.value;
  if (literal.kind === 'string') {
    const nanos = parseDurationNanos(literal.value);
    if (nanos === undefined) {
      throw invalidExpression(
        `invalid duration value for search attribute ${EXECUTION_DURATION}: '${literal.value}' ` +
          "(expected nanoseconds, or a duration such as '90s', '1h30m', '1.5d' or '01:30:00')",
      );
    }
    return nanos;
  }
  throw wrongValueType(column, literal);
}

function wrongValueType(column: Column, literal: Literal): Error {
  return invalidExpression(
    `invalid value type for search attribute ${column.alias} of type ${column.type}: ` +
      `${describeLiteral(literal)} (expected ${expectedValue(column)})`,
  );
}

function expectedValue(column: Column): string {
  if (column.field === EXECUTION_STATUS) return "a status name such as 'Running'";
  if (column.field === EXECUTION_DURATION) return "integer nanoseconds or a duration string such as '1h30m'";
  switch (column.type) {
    case 'Keyword':
    case 'KeywordList':
    case 'Text':
      return 'a quoted string';
    case 'Int':
    case 'Double':
      return 'a number';
    case 'Bool':
      return 'TRUE or FALSE';
    case 'Datetime':
      return "an RFC 3339 string such as '2024-05-01T12:00:00Z', or integer epoch nanoseconds";
  }
}

function describeLiteral(literal: Literal): string {
  switch (literal.kind) {
    case 'string':
      return `the string '${literal.value}'`;
    case 'number':
      return `the number ${literal.text}`;
    case 'bool':
      return `the boolean ${literal.text.toUpperCase()}`;
    case 'null':
      return 'NULL';
  }
}

function builtInType(name: string): SearchAttributeType | undefined {
  // hasOwn: a query naming `toString` or `constructor` must not find Object.prototype's members.
  return Object.hasOwn(builtInSearchAttributes, name) ? builtInSearchAttributes[name] : undefined;
}

function valueOf(record: VisibilityRecord, field: string): unknown {
  return Object.hasOwn(record, field) ? record[field] : undefined;
}

/** IS NULL: absent, or an empty list (Temporal removes a search attribute set to an empty list). */
function isMissing(value: unknown): boolean {
  return value === undefined || value === null || (Array.isArray(value) && value.length === 0);
}

/**
 * The comparable form of a record's scalar value, or undefined (SQL NULL) when it is absent or not of
 * the attribute's type.
 */
function scalarOf(column: Column, value: unknown): Scalar | undefined {
  if (column.field === EXECUTION_STATUS) {
    if (typeof value === 'string') return statusCode(value);
    return typeof value === 'number' && isStatusCode(value) ? value : undefined;
  }
  switch (column.type) {
    case 'Keyword':
    case 'Text':
      return typeof value === 'string' ? value : undefined;
    case 'Int':
    case 'Double':
    case 'Datetime':
      return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
    case 'Bool':
      return typeof value === 'boolean' ? (value ? 1 : 0) : undefined;
    case 'KeywordList':
      return undefined;
  }
}

function listOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return typeof value === 'string' ? [value] : [];
}

function matchesText(value: unknown, phrases: string[][]): boolean {
  if (typeof value !== 'string') return false;
  const tokens = textTokens(value);
  return phrases.some((phrase) => containsPhrase(tokens, phrase));
}

/**
 * ORDER BY key. A KeywordList sorts by its smallest item ascending and its largest descending, which is
 * Elasticsearch's default for multi-valued fields.
 */
function sortKey(column: Column, record: VisibilityRecord, descending: boolean): Scalar | undefined {
  const value = valueOf(record, column.field);
  if (column.type !== 'KeywordList') return scalarOf(column, value);
  const sorted = listOf(value).sort(compareCodePoints);
  return descending ? sorted[sorted.length - 1] : sorted[0];
}

function compareScalars(a: Scalar, b: Scalar): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  return compareCodePoints(String(a), String(b));
}

function holds(operator: ComparisonOperator, order: number): boolean {
  switch (operator) {
    case '=':
      return order === 0;
    case '!=':
      return order !== 0;
    case '<':
      return order < 0;
    case '<=':
      return order <= 0;
    case '>':
      return order > 0;
    case '>=':
      return order >= 0;
    default:
      // Unreachable: checkOperator refuses every other operator for scalar types.
      throw new Error(`unexpected operator ${operator}`);
  }
}

function and(left: Truth, right: Truth): Truth {
  if (left === false || right === false) return false;
  return left === null || right === null ? null : true;
}

function or(left: Truth, right: Truth): Truth {
  if (left === true || right === true) return true;
  return left === null || right === null ? null : false;
}

function not(value: Truth): Truth {
  return value === null ? null : !value;
}

function timeOf(record: VisibilityRecord, field: string): number | undefined {
  const value = valueOf(record, field);
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function stringOf(record: VisibilityRecord, field: string): string {
  const value = valueOf(record, field);
  return typeof value === 'string' ? value : '';
}

function compareMissingFirstDescending(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? -1 : 1;
  return b - a;
}
