// Temporal's visibility query language ("List Filter"): what ListWorkflowExecutions and
// CountWorkflowExecutions accept in `query`. Pure: the server hands in records, this module says which
// match and in what order. The semantics follow temporalio/temporal's query converter and the SQLite
// store behind `temporal server start-dev`; where stores differ, the choice is noted beside the code
// (see `visibility-query/compile.ts` for missing values).
import { compareDefault, compileQuery } from './visibility-query/compile';
import {
  NAMESPACE_DIVISION,
  type SearchAttributeType,
  type VisibilityRecord,
} from './visibility-query/model';
import { parseQueryTree } from './visibility-query/parser';

export type { AttributeValue, SearchAttributeType, VisibilityRecord } from './visibility-query/model';
export { builtInSearchAttributes, VisibilityQueryError } from './visibility-query/model';

/** A parsed, type-checked visibility query. */
export interface VisibilityQuery {
  // Function-valued properties rather than methods: neither uses `this`, so `records.filter(q.matches)`
  // and `records.sort(q.compare)` are safe, and the type says so to the unbound-method lint rule.
  /**
   * Whether the execution satisfies the query's condition. As in Temporal, a query that does not
   * mention `TemporalNamespaceDivision` also requires it to be absent, which hides executions that
   * belong to system workflows such as schedulers.
   */
  readonly matches: (record: VisibilityRecord) => boolean;
  /**
   * Sort comparator: ORDER BY clauses if given (missing values last, then RunId descending, as in
   * Elasticsearch), else Temporal's default order (running first i.e. null CloseTime first, then
   * CloseTime desc, then StartTime desc, then RunId ascending).
   */
  readonly compare: (a: VisibilityRecord, b: VisibilityRecord) => number;
  /**
   * Record keys of a `GROUP BY` clause: empty, or one of `ExecutionStatus`, `TemporalNamespaceDivision`
   * or a `TemporalLowCardinalityKeyword…` attribute. Only CountWorkflowExecutions groups; Temporal's
   * List refuses a query with GROUP BY ("operation is not supported: 'GROUP BY' clause").
   */
  readonly groupBy: readonly string[];
  /**
   * Whether the query has an ORDER BY clause. The SQL visibility stores (SQLite under `temporal server
   * start-dev`, MySQL, PostgreSQL) refuse it; only Elasticsearch orders, with the rules `compare` follows.
   */
  readonly ordered: boolean;
}

/**
 * Parses and type-checks a visibility query.
 *
 * @param query The List Filter, e.g. `WorkflowType = 'experiment' AND StartTime > '2024-05-01T00:00:00Z'
 *   ORDER BY StartTime DESC`. Empty or whitespace matches every execution, in the default order.
 * @param customTypes Registered custom search attribute names → types; names are case-sensitive.
 * @throws VisibilityQueryError for a syntax error (with its position), an unknown attribute, an
 *   operator the attribute's type does not support, or a value of the wrong type; the message is
 *   Temporal's wording, prefixed `invalid query: `.
 */
export function parseVisibilityQuery(
  query: string,
  customTypes: ReadonlyMap<string, SearchAttributeType>,
): VisibilityQuery {
  const compiled = compileQuery(parseQueryTree(query), customTypes);
  const { predicate, orderBy, mentionsNamespaceDivision } = compiled;
  return {
    matches: (record) => {
      const inDivision =
        Object.hasOwn(record, NAMESPACE_DIVISION) && record[NAMESPACE_DIVISION] !== undefined;
      if (inDivision && !mentionsNamespaceDivision) return false;
      return predicate === undefined || predicate(record) === true;
    },
    compare: orderBy ?? compareDefault,
    groupBy: compiled.groupBy,
    ordered: orderBy !== undefined,
  };
}
