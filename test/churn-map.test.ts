// ChurnMap (the worker's and coordinator's per-task maps) behaves like a Map, whatever the operations.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChurnMap } from '../src/workers/churn-map.ts';

type Op = { kind: 'set'; key: number; value: number } | { kind: 'delete'; key: number } | { kind: 'clear' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 20 }), value: fc.integer() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 20 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
);

describe('ChurnMap', () => {
  it('answers size, get, has, firstKey and values (in insertion order) as a Map does after any operations', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const model = new Map<number, number>();
        const map = new ChurnMap<number, number>();
        for (const o of ops) {
          if (o.kind === 'set') {
            model.set(o.key, o.value);
            expect(map.set(o.key, o.value)).toBe(map);
          } else if (o.kind === 'delete') {
            expect(map.delete(o.key)).toBe(model.delete(o.key));
          } else {
            model.clear();
            map.clear();
          }
          expect(map.size).toBe(model.size);
          expect(map.firstKey()).toBe(model.keys().next().value);
        }
        for (let k = 0; k <= 20; k++) {
          expect(map.has(k)).toBe(model.has(k));
          expect(map.get(k)).toBe(model.get(k));
        }
        expect(map.values()).toEqual([...model.values()]);
      }),
    );
  });

  it('values() hands out a copy: a later delete or clear (which empties the boxes) leaves it whole', () => {
    const map = new ChurnMap<string, { big: number[] }>();
    const kept = { big: [1, 2, 3] };
    map.set('a', kept).set('b', { big: [4] });
    const values = map.values();
    map.delete('a');
    map.clear();
    expect(map.size).toBe(0);
    expect(map.get('a')).toBeUndefined();
    expect(values).toEqual([kept, { big: [4] }]);
  });
});
