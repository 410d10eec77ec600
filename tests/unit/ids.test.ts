import { closestId, requireLablineId } from '../../src/client/ids';

test('a typo of a known id is suggested; an unrelated id is not', () => {
  const known = ['exp-quickstart', 'exp-lr-sweep-03', 'camp-lr'];
  expect(closestId('exp-quikstart', known)).toBe('exp-quickstart');
  expect(closestId('exp-lr-sweep-3', known)).toBe('exp-lr-sweep-03');
  expect(closestId('exp-something-else', known)).toBeUndefined();
  expect(closestId('exp-quickstart', ['exp-quickstart'])).toBeUndefined();
  expect(closestId('exp-a', [])).toBeUndefined();
});

test('experiment and campaign ids pass; anything else is refused with what an id looks like', () => {
  expect(requireLablineId('exp-quickstart')).toBe('exp-quickstart');
  expect(requireLablineId('camp-lr')).toBe('camp-lr');
  expect(() => requireLablineId('Exp-Quickstart')).toThrow(/starts with "exp-"/);
});
