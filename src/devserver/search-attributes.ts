/**
 * Custom search attributes: their registry per namespace, validation of the typed payloads the SDK sends,
 * and decoding into the plain values the visibility query evaluates.
 */
import { invalidArgument } from './errors';
import { decodeJsonPayload, enums, payloadTypeMetadata, type Pb } from './proto';

export const searchAttributeTypes = [
  'Keyword',
  'Text',
  'Int',
  'Double',
  'Bool',
  'Datetime',
  'KeywordList',
] as const;
export type SearchAttributeTypeName = (typeof searchAttributeTypes)[number];

const { IndexedValueType } = enums;

/** IndexedValueType enum value of each type name, as OperatorService speaks it. */
export const indexedValueTypeOf: Record<SearchAttributeTypeName, number> = {
  Text: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  Keyword: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Int: IndexedValueType.INDEXED_VALUE_TYPE_INT,
  Double: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  Bool: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  Datetime: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KeywordList: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

export function typeNameOf(indexedValueType: number): SearchAttributeTypeName | undefined {
  return searchAttributeTypes.find((name) => indexedValueTypeOf[name] === indexedValueType);
}

export function isSearchAttributeType(value: string): value is SearchAttributeTypeName {
  return (searchAttributeTypes as readonly string[]).includes(value);
}

/** A decoded search attribute value: Datetime as epoch ms, KeywordList as string[]; undefined = unset. */
export type SearchAttributeValue = string | number | boolean | string[] | undefined;

/**
 * Decodes and checks one attribute's payload against its registered type. An empty payload (null or an
 * empty list) means "unset", as the SDK sends it to remove an attribute.
 */
export function decodeSearchAttribute(
  name: string,
  type: SearchAttributeTypeName,
  payload: Pb,
): SearchAttributeValue {
  let value: unknown;
  try {
    value = decodeJsonPayload(payload);
  } catch {
    throw invalidArgument(`invalid value for search attribute ${name} of type ${type}: not JSON`);
  }
  if (value === null || value === undefined || (Array.isArray(value) && value.length === 0)) return undefined;
  const declared = payloadTypeMetadata(payload);
  if (declared && declared !== type) {
    throw invalidArgument(
      `invalid value for search attribute ${name} of type ${type}: the value is typed ${declared}`,
    );
  }
  const bad = () =>
    invalidArgument(`invalid value for search attribute ${name} of type ${type}: ${JSON.stringify(value)}`);
  // The SDK writes single values as one-element lists for every type but KeywordList.
  const single =
    Array.isArray(value) && type !== 'KeywordList' ? (value.length === 1 ? value[0] : value) : value;
  switch (type) {
    case 'Keyword':
    case 'Text':
      if (typeof single !== 'string') throw bad();
      return single;
    case 'KeywordList': {
      const list = Array.isArray(value) ? value : [value];
      if (!list.every((item) => typeof item === 'string')) throw bad();
      return list;
    }
    case 'Int':
      if (typeof single !== 'number' || !Number.isInteger(single)) throw bad();
      return single;
    case 'Double':
      if (typeof single !== 'number') throw bad();
      return single;
    case 'Bool':
      if (typeof single !== 'boolean') throw bad();
      return single;
    case 'Datetime': {
      const ms = typeof single === 'string' ? Date.parse(single) : NaN;
      if (Number.isNaN(ms)) throw bad();
      return ms;
    }
  }
}

/**
 * System attributes that workflows may set themselves: the SDK upserts `TemporalChangeVersion` when
 * workflow code calls `patched()`, and Temporal accepts it without registration.
 */
const settableSystemAttributes: Readonly<Record<string, SearchAttributeTypeName>> = {
  TemporalChangeVersion: 'KeywordList',
};

/** Custom attributes of one namespace. */
export class SearchAttributeRegistry {
  private readonly custom = new Map<string, SearchAttributeTypeName>();

  private typeOf(name: string): SearchAttributeTypeName | undefined {
    return this.custom.get(name) ?? settableSystemAttributes[name];
  }

  get types(): ReadonlyMap<string, SearchAttributeTypeName> {
    return this.custom;
  }

  add(name: string, type: SearchAttributeTypeName): void {
    this.custom.set(name, type);
  }

  remove(name: string): boolean {
    return this.custom.delete(name);
  }

  /** Checks every attribute of a start or upsert; throws INVALID_ARGUMENT naming the first bad one. */
  validate(namespace: string, indexedFields: Record<string, Pb> | undefined): void {
    for (const [name, payload] of Object.entries(indexedFields ?? {})) {
      const type = this.typeOf(name);
      if (!type) {
        throw invalidArgument(`Namespace ${namespace} has no mapping defined for search attribute ${name}`);
      }
      decodeSearchAttribute(name, type, payload);
    }
  }

  /** Decoded values of a run's attributes, for visibility queries. */
  decode(indexedFields: Record<string, Pb>): Record<string, SearchAttributeValue> {
    const values: Record<string, SearchAttributeValue> = {};
    for (const [name, payload] of Object.entries(indexedFields)) {
      const type = this.typeOf(name);
      if (type) values[name] = decodeSearchAttribute(name, type, payload);
    }
    return values;
  }
}

/** Applies an upsert: attributes with an empty payload are removed, the others replaced. */
export function mergeSearchAttributes(
  current: Record<string, Pb>,
  upsert: Record<string, Pb> | undefined,
): Record<string, Pb> {
  const merged = { ...current };
  for (const [name, payload] of Object.entries(upsert ?? {})) {
    const value = payload.data ? decodeJsonPayload(payload) : undefined;
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0))
      delete merged[name];
    else merged[name] = payload;
  }
  return merged;
}
