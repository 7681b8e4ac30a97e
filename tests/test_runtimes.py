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


def fake_node(monkeypatch, calls: list):
    """Stands in for `node predict.mjs`: each photo's "probabilities" are its own pixel values, so the order of
    the rows tells which photo each came from; with TRASHURE_DUMP_INPUT it writes its inputs, as the tool does."""
    import json
    import subprocess

    import trashure.runtimes as runtimes

    def run(cmd, env, **kwargs):
        _, _, n = cmd[cmd.index("--tensor"):]
        batch = np.fromfile(cmd[cmd.index("--tensor") + 1], dtype="<f4").reshape(int(n), -1)
        calls.append(int(n))
        if "TRASHURE_DUMP_INPUT" in env:
            batch.tofile(env["TRASHURE_DUMP_INPUT"])
        out = json.dumps({"backend": "wasm", "probabilities": batch.tolist(), "ms_per_image": float(n)})
        return subprocess.CompletedProcess(cmd, 0, stdout=out + "\n", stderr="")

    monkeypatch.setattr(runtimes, "node_available", lambda: True)
    monkeypatch.setattr(runtimes.subprocess, "run", run)


def test_tfjs_photos_shared_among_processes_come_back_in_order(monkeypatch, tmp_path):
    from trashure.runtimes import tfjs_predict

    calls: list = []
    fake_node(monkeypatch, calls)
    batch = np.arange(7 * 2, dtype=np.float32).reshape(7, 1, 1, 2)
    one = tfjs_predict(tmp_path, batch=batch, processes=1)
    dump = tmp_path / "inputs.f32"
    three = tfjs_predict(tmp_path, batch=batch, processes=3, dump_inputs=dump)
    assert calls[0] == 7 and sorted(calls[1:]) == [2, 2, 3]  # the three run side by side, in any order
    assert three["probabilities"] == one["probabilities"] == batch.reshape(7, 2).tolist()
    np.testing.assert_array_equal(np.fromfile(dump, dtype="<f4"), batch.ravel())
    assert three["backend"] == "wasm" and three["ms_per_image"] == (2 * 2 + 2 * 2 + 3 * 3) / 7
    # Never more processes than photos.
    calls.clear()
    assert tfjs_predict(tmp_path, batch=batch[:1], processes=4)["probabilities"] == [[0.0, 1.0]]
    assert calls == [1]
