/**
 * Labline's custom search attributes, as defined in temporal-config/search-attributes.json; the embedded
 * server registers them at start so the Web UI and `labline list` can filter on them.
 */
import definitions from '../../temporal-config/search-attributes.json';
import { isSearchAttributeType, type SearchAttributeTypeName } from './search-attributes';

export const lablineSearchAttributes: Record<string, SearchAttributeTypeName> = Object.fromEntries(
  Object.entries(definitions.searchAttributes).map(([name, type]) => {
    if (!isSearchAttributeType(type))
      throw new Error(`temporal-config/search-attributes.json: ${name} has unknown type ${type}`);
    return [name, type];
  }),
);
