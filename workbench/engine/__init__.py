"""The decoding engine: how a token is produced, steered or not, and nothing of the science.

One entry point, `generation.decode` (its settings: `config.GenerationConfig`), chooses the
decoder: continuous batching (`continuous`, over `batching` and `kv_cache`) or static batches whose
step a CUDA graph can replay (`static`, steering as per-row tensors by `row_steering`). Both keep
one per-sequence log (`sequences`) and pick tokens the same way (`sampling`). Hooks read the pass
in flight (`passes`: what it is told, what they record); steering is applied from a resolved value
by one gate (`steering`), in the middle of a block where needed (`mid_residual`), with the KV-cache
repair of transient steering (`transient`). Passes run the Hugging Face modules wherever nothing is
hooked (`lean_passes`, `native_attention`); teacher-forced passes read states without decoding
(`teacher_forced`). Hook names are spelled and checked in one place (`hooks`).

The engine imports nothing from the science (`workbench.core`) or any layer above it.
"""
