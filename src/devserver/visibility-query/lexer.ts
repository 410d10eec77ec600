// Tokenizer for the visibility query language. Temporal feeds the query to a MySQL-dialect SQL parser
// (temporalio/sqlparser, a vitess fork), so the lexical rules follow MySQL: strings in single or double
// quotes with backslash escapes and doubled delimiters, names in backquotes, keywords case-insensitive.
import { malformedQuery } from './model';

/** The kinds of token the parser sees. */
export type TokenKind =
  | 'word' // bare identifier or keyword; keywords are recognised by the parser, case-insensitively
  | 'name' // `backquoted` identifier, never a keyword
  | 'string'
  | 'number'
  | 'operator' // = != <> < <= > >= <=>
  | 'punct' // ( ) , - +
  | 'end';

/** One token with its place in the query, for error messages. */
export interface Token {
  readonly kind: TokenKind;
  /** The token as written in the query. */
  readonly text: string;
  /** Decoded value: unescaped string or name, upper-cased word, or `text` for the other kinds. */
  readonly value: string;
  /** 1-based character position of the token's first character in the query. */
  readonly position: number;
}

// MySQL's backslash escapes (vitess `sqltypes.SQLDecodeMap`); any other escaped character stands for
// itself, so `\%` is `%`.
const escapes: Readonly<Record<string, string>> = {
  '0': '\0',
  "'": "'",
  '"': '"',
  b: '\b',
  n: '\n',
  r: '\r',
  t: '\t',
  Z: '\x1a',
  '\\': '\\',
};

const wordStart = /[\p{L}_@]/u;
const wordPart = /[\p{L}\p{N}_@$]/u;
const digit = /[0-9]/;

/** Splits `query` into tokens, ending with one `end` token. Throws VisibilityQueryError. */
export function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const at = (k: number): string => query.charAt(k);

  while (i < query.length) {
    const c = at(i);
    const start = i;
    const push = (kind: TokenKind, value?: string): void => {
      const text = query.slice(start, i);
      tokens.push({ kind, text, value: value ?? text, position: start + 1 });
    };

    if (/\s/.test(c)) {
      i++;
    } else if (c === "'" || c === '"') {
      const [value, end] = scanQuoted(query, i, c, 'string');
      i = end;
      push('string', value);
    } else if (c === '`') {
      const [value, end] = scanQuoted(query, i, c, 'name');
      i = end;
      push('name', value);
    } else if (digit.test(c) || (c === '.' && digit.test(at(i + 1)))) {
      i = scanNumber(query, i);
      push('number');
    } else if (wordStart.test(c)) {
      while (i < query.length && wordPart.test(at(i))) i++;
      push('word', query.slice(start, i).toUpperCase());
    } else if (c === '<' || c === '>' || c === '=' || c === '!') {
      const three = query.slice(i, i + 3);
      const two = query.slice(i, i + 2);
      if (three === '<=>') i += 3;
      else if (two === '<=' || two === '>=' || two === '!=' || two === '<>') i += 2;
      else if (c === '!') throw syntaxErrorAt(start, c);
      else i += 1;
      // `<>` is SQL's spelling of `!=`; normalise so later errors name one operator.
      const text = query.slice(start, i);
      push('operator', text === '<>' ? '!=' : text);
    } else if (c === '(' || c === ')' || c === ',' || c === '-' || c === '+') {
      i++;
      push('punct');
    } else {
      throw syntaxErrorAt(start, c);
    }
  }
  tokens.push({ kind: 'end', text: '', value: '', position: query.length + 1 });
  return tokens;
}

function scanQuoted(query: string, start: number, delim: string, what: 'string' | 'name'): [string, number] {
  let value = '';
  let i = start + 1;
  while (i < query.length) {
    const c = query.charAt(i);
    if (c === '\\' && what === 'string') {
      if (i + 1 >= query.length) break;
      const escaped = query.charAt(i + 1);
      value += escapes[escaped] ?? escaped;
      i += 2;
    } else if (c === delim) {
      // A doubled delimiter is the delimiter itself: 'it''s', `odd``name`.
      if (query.charAt(i + 1) === delim) {
        value += delim;
        i += 2;
      } else {
        return [value, i + 1];
      }
    } else {
      value += c;
      i++;
    }
  }
  const kind = what === 'string' ? 'string' : 'quoted name';
  throw malformedQuery(`unterminated ${kind} starting at position ${start + 1}`);
}

function scanNumber(query: string, start: number): number {
  const match = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(query.slice(start));
  const end = start + (match?.[0].length ?? 1);
  // Like MySQL, a letter may not follow a number: `1abc` is an error, not `1` then `abc`.
  const next = query.charAt(end);
  if (next !== '' && (wordPart.test(next) || next === '.')) {
    let stop = end;
    while (stop < query.length && (wordPart.test(query.charAt(stop)) || query.charAt(stop) === '.')) stop++;
    throw syntaxErrorAt(start, query.slice(start, stop));
  }
  return end;
}

function syntaxErrorAt(index: number, near: string): Error {
  return malformedQuery(`syntax error at position ${index + 1} near '${near}'`);
}
