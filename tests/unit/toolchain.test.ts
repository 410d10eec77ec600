import { z } from 'zod';

test('zod parses at the boundary', () => {
  expect(z.object({ a: z.number() }).safeParse({ a: 'x' }).success).toBe(false);
});
