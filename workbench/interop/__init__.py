"""The workbench inside other tools: lm-evaluation-harness (`lmeval`: `--model als`) and static
exports of a run's steering (`export`: llama.cpp control vectors, lm-eval steering files)."""
