/** Search attributes the tests use: Labline's own (temporal-config/search-attributes.json) and the conformance suite's. */
import lablineDefinitions from '../../temporal-config/search-attributes.json';

export const testSearchAttributes: Record<string, string> = {
  ...lablineDefinitions.searchAttributes,
  TestKeyword: 'Keyword',
  TestText: 'Text',
  TestInt: 'Int',
  TestDouble: 'Double',
  TestBool: 'Bool',
  TestDatetime: 'Datetime',
  TestKeywordList: 'KeywordList',
};
