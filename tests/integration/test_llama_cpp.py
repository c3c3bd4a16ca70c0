"""The exported control vector inside llama.cpp itself (llama-cpp-python, on the embedded GGUF).

`-m slow`; skipped where llama-cpp-python is not installed (PyPI has only its source: building it
took 5 min 14 s on the 2-core machine, so the lock leaves it out). The file we write is laid
into llama.cpp's control-vector buffer as its loader lays it (``direction.N`` at offset
``(N - 1) * n_embd``), then applied over a layer range: a vector for block 23 must act when the
range holds 23 and leave the output bit-identical when it holds only 22; acting, it must turn the
final hidden state of the prompt toward the vector.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch

from workbench.interop.export import read_control_vector, write_control_vector

llama_cpp = pytest.importorskip("llama_cpp")

pytestmark = pytest.mark.slow

TEXT = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def test_control_vector_acts_at_its_block_inside_llama_cpp(tmp_path):
    from workbench.sources.embedded import embedded_gguf_path

    llm = llama_cpp.Llama(
        model_path=str(embedded_gguf_path()),
        embedding=True,
        n_ctx=256,
        verbose=False,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST,
    )
    try:
        n_embd, n_layer = llm.n_embd(), 24
        v = torch.randn(n_embd, generator=torch.Generator().manual_seed(0))
        v = v / v.norm()
        path = write_control_vector(
            tmp_path / "cv.gguf", {23: 30.0 * v}, site="resid_post", model_hint="qwen2"
        )
        _, vectors = read_control_vector(path)
        buffer = np.zeros(n_embd * (n_layer - 1), dtype=np.float32)
        for n, x in vectors.items():
            buffer[(n - 1) * n_embd : n * n_embd] += x
        pointer = buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

        def final_state(first: int, last: int) -> np.ndarray:
            rc = llama_cpp.llama_set_adapter_cvec(
                llm._ctx.ctx, pointer, buffer.size, n_embd, first, last
            )
            assert rc == 0
            llm.reset()
            out = np.array(llm.embed(TEXT, normalize=False))
            llama_cpp.llama_set_adapter_cvec(llm._ctx.ctx, None, 0, n_embd, -1, -1)
            return out

        llm.reset()
        base = np.array(llm.embed(TEXT, normalize=False))

        def cos(e: np.ndarray) -> float:
            return float(e @ v.numpy() / np.linalg.norm(e))

        assert np.array_equal(final_state(22, 22), base)  # block 22 holds no vector
        acting = final_state(23, 23)
        assert cos(acting) > cos(base) + 0.2  # measured: -0.08 -> 0.26
        assert np.array_equal(final_state(1, n_layer - 1), acting)
    finally:
        llm.close()
