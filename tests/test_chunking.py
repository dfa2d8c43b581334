"""map_chunked: the chunked, padded, sharded loop behind simulate_batch, evaluate and infer
(two devices: tests/test_batch.py::test_sharded_across_two_host_devices)."""

import jax
import numpy as np
import pytest

from jaxid.simulate.chunking import chunk_length, map_chunked


def test_chunks_are_padded_so_one_compilation_serves_all():
    traces = []

    @jax.jit
    def run(x, pair):
        traces.append(x.shape)
        a, b = pair
        return {"sum": x.sum(-1) + a, "prod": x * b[:, None]}

    x = np.arange(21.0).reshape(7, 3)
    a, b = np.arange(7.0), -np.arange(7.0)
    out = map_chunked(run, (x, (a, b)), chunk_size=3)
    assert traces == [(3, 3)]  # 7 records in chunks of 3: the last chunk padded, one trace
    assert isinstance(out["sum"], np.ndarray) and out["sum"].shape == (7,)
    np.testing.assert_array_equal(out["sum"], x.sum(-1) + a)
    np.testing.assert_array_equal(out["prod"], x * b[:, None])


def test_none_arguments_pass_through_and_small_inputs_use_one_chunk():
    out = map_chunked(lambda x, c: x * 2 if c is None else x, (np.ones(4), None), chunk_size=100)
    np.testing.assert_array_equal(out, np.full(4, 2.0))
    assert chunk_length(100, 4, 1) == 4 and chunk_length(100, 5, 2) == 6 and chunk_length(3, 10, 2) == 4


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((np.ones(3),), {"chunk_size": 0}, "chunk_size must be a positive int"),
        ((np.ones(3), np.ones(4)), {"chunk_size": 2}, "same leading length"),
        ((np.ones(0),), {"chunk_size": 2}, "no records"),
        ((None,), {"chunk_size": 2}, "hold no arrays"),
        ((np.ones(3),), {"chunk_size": 2, "devices": []}, "devices must name at least one device"),
    ],
)
def test_bad_input_is_a_clear_error(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        map_chunked(lambda *a: a[0], args, **kwargs)
