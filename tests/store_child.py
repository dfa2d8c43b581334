"""Generate a tiny gait data set into a store, runnable as a script (for the resume and
multi-process tests in ``tests/test_store_resume.py``).

``python store_child.py STORE [PROCESS_ID NUM_PROCESSES PORT]``: with the last three, the process
joins a ``jax.distributed`` run on ``localhost:PORT`` first. ``SLOW`` seconds are added to every
chunk (outside the jitted work: the numbers are untouched), so that a test can kill it part-way.
"""

import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

KW = dict(seed=11, duration=1.0, save_dt=0.25, chunk_size=4, progress=False)
N = 22  # six chunks of four: the last one partly used
SLOW = float(os.environ.get("JAXID_STORE_CHILD_SLOW", "0"))


def main():
    path = sys.argv[1]
    if len(sys.argv) > 2:
        pid, nproc, port = (int(a) for a in sys.argv[2:5])
        jax.distributed.initialize(
            coordinator_address=f"localhost:{port}", num_processes=nproc, process_id=pid
        )
    from jaxid.walker import data

    if SLOW:
        make = data._chunk_drawn

        def slow(*args, **kwargs):
            time.sleep(SLOW)
            return make(*args, **kwargs)

        data._chunk_drawn = slow
    ds = data.generate_gait_dataset(N, store=path, **KW)
    print("records", len(ds), flush=True)
    if len(sys.argv) > 2:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
