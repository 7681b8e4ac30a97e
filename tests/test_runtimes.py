"""Runners feed their model a bounded number of photos a call, whatever the batch they are given."""

import numpy as np

from trashure.runtimes import CHUNK, in_chunks


def test_a_large_batch_is_run_in_chunks_in_order():
    seen = []

    def run(batch):
        seen.append(len(batch))
        return batch[:, :1] * 2

    batch = np.arange(2 * CHUNK + 5, dtype=np.float32)[:, None]
    out = in_chunks(run)(batch)
    assert seen == [CHUNK, CHUNK, 5]
    np.testing.assert_array_equal(out, batch * 2)


def test_a_small_batch_is_one_call():
    seen = []
    in_chunks(lambda b: seen.append(len(b)) or b)(np.zeros((3, 1), np.float32))
    assert seen == [3]
