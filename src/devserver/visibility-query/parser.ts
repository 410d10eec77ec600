// Recursive-descent parser for the visibility query language: a SQL WHERE condition, then optional
// GROUP BY and ORDER BY clauses. It builds a syntax tree and reports only grammar errors; whether a name
// is a search attribute, or a value fits its type, is decided in `compile.ts`, after the whole query has
// parsed, so that (as in Temporal, which parses with a full SQL parser first) a syntax error anywhere
// wins over a type error earlier in the query.
//
// Precedence follows MySQL's grammar in temporalio/sqlparser `sql.y`, loosest first:
//   OR  <  AND  <  NOT  <  comparisons (= != < <= > >= IN BETWEEN STARTS_WITH LIKE IS)
// so `NOT a = 1 AND b = 2` is `(NOT a = 1) AND b = 2`, and `a OR b AND c` is `a OR (b AND c)`.
import { malformedQuery, notSupported } from './model';
import { tokenize, type Token } from './lexer';

/** A literal value as written in the query. */
export type Literal =
  | { readonly kind: 'string'; readonly value: string; readonly text: string }
  | { readonly kind: 'number'; readonly value: number; readonly text: string; readonly integer: boolean }
  | { readonly kind: 'bool'; readonly value: boolean; readonly text: string }
  | { readonly kind: 'null'; readonly text: string };

/** A search attribute name as written (backquotes removed). */
export interface ColumnRef {
  readonly kind: 'column';
  readonly name: string;
}

/** A function call such as `now()`: parsed so it can be refused with Temporal's message. */
export interface FunctionCall {
  readonly kind: 'function';
  readonly name: string;
}

/** Either side of a comparison. The compiler checks that the left is a column and the right a literal. */
export type Operand = ColumnRef | FunctionCall | Literal;

/** Comparison operators as Temporal names them (upper case; `<>` already normalised to `!=`). */
export type ComparisonOperator =
  | '='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | '<=>'
  | 'STARTS_WITH'
  | 'NOT STARTS_WITH'
  | 'LIKE'
  | 'NOT LIKE'
  | 'REGEXP'
  | 'NOT REGEXP';

/** The WHERE part of a query. */
export type Condition =
  | { readonly kind: 'and' | 'or'; readonly left: Condition; readonly right: Condition }
  | { readonly kind: 'not'; readonly operand: Condition }
  | {
      readonly kind: 'compare';
      readonly left: Operand;
      readonly operator: ComparisonOperator;
      readonly right: Operand;
    }
  | { readonly kind: 'in'; readonly left: Operand; readonly negated: boolean; readonly values: Operand[] }
  | {
      readonly kind: 'between';
      readonly left: Operand;
      readonly negated: boolean;
      readonly from: Operand;
      readonly to: Operand;
    }
  | { readonly kind: 'isNull'; readonly left: Operand; readonly negated: boolean }
  | { readonly kind: 'isBoolean'; readonly left: Operand }
  /** An operand with no comparison, such as `WorkflowId` alone: refused by the compiler. */
  | { readonly kind: 'operand'; readonly operand: Operand };

/** One ORDER BY term. */
export interface OrderTerm {
  readonly operand: Operand;
  readonly descending: boolean;
}

/** The whole query. */
export interface QueryTree {
  readonly where: Condition | undefined;
  readonly groupBy: Operand[];
  readonly orderBy: OrderTerm[];
}

// Words that cannot be bare attribute names (backquote them to use them as names), as in MySQL.
const reserved = new Set([
  'AND',
  'OR',
  'NOT',
  'IN',
  'IS',
  'NULL',
  'TRUE',
  'FALSE',
  'BETWEEN',
  'LIKE',
  'REGEXP',
  'STARTS_WITH',
  'ORDER',
  'GROUP',
  'BY',
  'LIMIT',
  'ASC',
  'DESC',
]);

/** Parses a whole query. An empty or blank query gives an empty tree. Throws VisibilityQueryError. */
export function parseQueryTree(query: string): QueryTree {
  return new Parser(tokenize(query)).parseQuery();
}

class Parser {
  private index = 0;

  constructor(private readonly tokens: Token[]) {}

  parseQuery(): QueryTree {
    let where: Condition | undefined;
    if (!this.atEnd() && !this.atKeyword('ORDER') && !this.atKeyword('GROUP')) {
      where = this.parseOr();
    }

    const groupBy: Operand[] = [];
    if (this.acceptKeyword('GROUP')) {
      this.expectKeyword('BY');
      do groupBy.push(this.parseOperand('a search attribute name'));
      while (this.acceptPunct(','));
    }

    const orderBy: OrderTerm[] = [];
    if (this.acceptKeyword('ORDER')) {
      this.expectKeyword('BY');
      do {
        const operand = this.parseOperand('a search attribute name');
        let descending = false;
        if (this.acceptKeyword('DESC')) descending = true;
        else this.acceptKeyword('ASC');
        orderBy.push({ operand, descending });
      } while (this.acceptPunct(','));
    }

    if (this.atKeyword('LIMIT')) throw notSupported("'LIMIT' clause");
    if (!this.atEnd()) {
      const expected =
        where === undefined && groupBy.length === 0 ? 'a condition' : 'AND, OR, GROUP BY or ORDER BY';
      throw this.syntaxError(expected);
    }
    return { where, groupBy, orderBy };
  }

  private parseOr(): Condition {
    let left = this.parseAnd();
    while (this.acceptKeyword('OR')) left = { kind: 'or', left, right: this.parseAnd() };
    return left;
  }

  private parseAnd(): Condition {
    let left = this.parseNot();
    while (this.acceptKeyword('AND')) left = { kind: 'and', left, right: this.parseNot() };
    return left;
  }

  private parseNot(): Condition {
    if (this.acceptKeyword('NOT')) return { kind: 'not', operand: this.parseNot() };
    return this.parsePredicate();
  }

  private parsePredicate(): Condition {
    if (this.acceptPunct('(')) {
      const inner = this.parseOr();
      this.expectPunct(')');
      return inner;
    }

    const left = this.parseOperand('a condition');
    const token = this.peek();

    if (token.kind === 'operator') {
      this.index++;
      return { kind: 'compare', left, operator: token.value as ComparisonOperator, right: this.parseValue() };
    }
    if (this.acceptKeyword('IS')) {
      const negated = this.acceptKeyword('NOT');
      if (this.acceptKeyword('NULL')) return { kind: 'isNull', left, negated };
      // IS [NOT] TRUE / FALSE is valid SQL; the compiler refuses it with Temporal's message.
      if (this.acceptKeyword('TRUE') || this.acceptKeyword('FALSE')) return { kind: 'isBoolean', left };
      throw this.syntaxError('NULL or NOT NULL');
    }

    const negated = this.acceptKeyword('NOT');
    if (this.acceptKeyword('IN')) return { kind: 'in', left, negated, values: this.parseTuple() };
    if (this.acceptKeyword('BETWEEN')) {
      const from = this.parseValue();
      this.expectKeyword('AND');
      return { kind: 'between', left, negated, from, to: this.parseValue() };
    }
    for (const word of ['STARTS_WITH', 'LIKE', 'REGEXP'] as const) {
      if (this.acceptKeyword(word)) {
        const operator: ComparisonOperator = negated ? `NOT ${word}` : word;
        return { kind: 'compare', left, operator, right: this.parseValue() };
      }
    }
    if (negated) throw this.syntaxError('IN, BETWEEN or STARTS_WITH after NOT');

    // A lone operand ends the condition: report it as incomplete rather than as a syntax error, the
    // way Temporal does (`invalid expression: incomplete expression`).
    if (this.atConditionEnd()) return { kind: 'operand', operand: left };
    throw this.syntaxError('an operator such as =, !=, <, IN, BETWEEN, STARTS_WITH or IS');
  }

  private parseTuple(): Operand[] {
    this.expectPunct('(');
    const values: Operand[] = [];
    do values.push(this.parseValue());
    while (this.acceptPunct(','));
    this.expectPunct(')');
    return values;
  }

  private parseValue(): Operand {
    return this.parseOperand('a value');
  }

  private parseOperand(expected: string): Operand {
    const token = this.peek();
    switch (token.kind) {
      case 'string':
        this.index++;
        return { kind: 'string', value: token.value, text: token.text };
      case 'number':
        this.index++;
        return numberLiteral(token.text, 1);
      case 'name':
        this.index++;
        return { kind: 'column', name: token.value };
      case 'punct':
        if (token.value === '-' || token.value === '+') {
          const next = this.tokens[this.index + 1];
          if (next?.kind === 'number') {
            this.index += 2;
            return numberLiteral(token.value + next.text, token.value === '-' ? -1 : 1);
          }
        }
        break;
      case 'word':
        if (token.value === 'TRUE' || token.value === 'FALSE') {
          this.index++;
          return { kind: 'bool', value: token.value === 'TRUE', text: token.text };
        }
        if (token.value === 'NULL') {
          this.index++;
          return { kind: 'null', text: token.text };
        }
        if (reserved.has(token.value)) break;
        this.index++;
        if (this.atPunct('(')) {
          this.skipArguments();
          return { kind: 'function', name: token.text };
        }
        return { kind: 'column', name: token.text };
      default:
        break;
    }
    throw this.syntaxError(expected);
  }

  /** Skips a function's parenthesised arguments; only their balance matters, the call is refused. */
  private skipArguments(): void {
    let depth = 0;
    do {
      const token = this.peek();
      if (token.kind === 'end') throw this.syntaxError("')'");
      if (token.kind === 'punct' && token.value === '(') depth++;
      if (token.kind === 'punct' && token.value === ')') depth--;
      this.index++;
    } while (depth > 0);
  }

  private atConditionEnd(): boolean {
    return (
      this.atEnd() ||
      this.atPunct(')') ||
      ['AND', 'OR', 'ORDER', 'GROUP', 'LIMIT'].some((word) => this.atKeyword(word))
    );
  }

  private peek(): Token {
    // The token list always ends with an `end` token, and the parser never moves past it.
    return this.tokens[Math.min(this.index, this.tokens.length - 1)] as Token;
  }

  private atEnd(): boolean {
    return this.peek().kind === 'end';
  }

  private atKeyword(word: string): boolean {
    const token = this.peek();
    return token.kind === 'word' && token.value === word;
  }

  private acceptKeyword(word: string): boolean {
    if (!this.atKeyword(word)) return false;
    this.index++;
    return true;
  }

  private expectKeyword(word: string): void {
    if (!this.acceptKeyword(word)) throw this.syntaxError(word);
  }

  private atPunct(punct: string): boolean {
    const token = this.peek();
    return token.kind === 'punct' && token.value === punct;
  }

  private acceptPunct(punct: string): boolean {
    if (!this.atPunct(punct)) return false;
    this.index++;
    return true;
  }

  private expectPunct(punct: string): void {
    if (!this.acceptPunct(punct)) throw this.syntaxError(`'${punct}'`);
  }

  private syntaxError(expected: string): Error {
    const token = this.peek();
    const where =
      token.kind === 'end'
        ? `at position ${token.position} (end of query)`
        : `at position ${token.position} near '${token.text}'`;
    return malformedQuery(`syntax error ${where}: expected ${expected}`);
  }
}

function numberLiteral(text: string, sign: 1 | -1): Literal {
  const digits = text.replace(/^[+-]/, '');
  const integer = /^[0-9]+$/.test(digits);
  return { kind: 'number', value: sign * Number(digits), text, integer };
}
