"""``python -m callcenter.voice_pipeline``."""

import os

# One thread for numpy's BLAS and OpenMP: a call's models are small and run one at a time, and
# an idle BLAS pool busy-waits on the cores the calls need. Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import asyncio  # noqa: E402

from callcenter.voice_pipeline.service import serve  # noqa: E402

asyncio.run(serve())
