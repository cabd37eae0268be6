import assert from 'node:assert/strict';
import { createStreamSlots } from '../src/movies/stream-slots';

describe('inventory: stream slots', () => {
  it('gives out at most max slots, and a release frees one once however often it is called', () => {
    const slots = createStreamSlots(2);
    const a = slots.take();
    const b = slots.take();
    assert.ok(a && b);
    assert.equal(slots.take(), undefined, 'all taken');
    a();
    a();
    const c = slots.take();
    assert.ok(c, 'the released slot is free again');
    assert.equal(slots.take(), undefined, 'a second release of the same slot freed nothing');
  });
});
