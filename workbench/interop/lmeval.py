"""The workbench as an lm-evaluation-harness model: ``--model als``.

Importing this module registers the model type ``als`` with lm-eval (lm-eval 0.4 finds models by
registration only, so something must import it: ``python -m workbench.interop.lmeval`` runs
lm-eval's own command line after the import, and Python users import it before
`lm_eval.simple_evaluate`).

    python -m workbench.interop.lmeval run --model als --model_args run=runs/als-gsm8k \\
        --tasks gsm8k_local --include_path tasks

Model arguments: ``run`` (a finished `als run` folder: its model, prompt, generation settings,
directions and selected steering) or ``model`` (a model name, no steering); ``steer`` (default
true with a run): the run's conditional steering (cos < tau gate) during every request;
``prompt``: ``workbench`` (default: each context is a question, wrapped in the workbench's CoT
prompt exactly as `als generate` does) or ``raw`` (the context is tokenized as lm-eval wrote
it); ``device``, ``dtype``, ``batch_size``, ``max_new_tokens`` (override the run's).

Requests are served by the workbench itself: ``generate_until`` through `decode` (stopping at
lm-eval's ``until`` strings, and, in ``workbench`` prompt mode, once the answer is written, as
`als generate` does), ``loglikelihood`` and ``loglikelihood_rolling`` through the bridge's
forward pass with the same hooks (the continuation counts as generated text, so the gate acts
on it as while decoding).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from workbench.checks import parse_bool
from workbench.core.prompts import PromptConfig, answer_complete, encode_prompts
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.teacher_forced import teacher_forced
from workbench.errors import WorkbenchError

__all__ = ["ALSLM"]


def _cut(text: str, until: Sequence[str]) -> str:
    """`text` up to the first of the `until` strings (lm-eval's stop semantics)."""
    for stop in until:
        if stop and stop in text:
            text = text[: text.index(stop)]
    return text


@register_model("als")
class ALSLM(LM):
    """lm-eval requests served by a workbench bridge, optionally under a run's ALS steering."""

    def __init__(
        self,
        run: str | None = None,
        model: str | None = None,
        steer: bool | str = True,
        prompt: str = "workbench",
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | str | None = None,
        max_new_tokens: int | str | None = None,
    ) -> None:
        super().__init__()
        from workbench.sources.models import ModelConfig, load_model

        if (run is None) == (model is None):
            raise WorkbenchError("give the als model either run=<folder> or model=<name>")
        if prompt not in ("workbench", "raw"):
            raise WorkbenchError(f"prompt must be workbench or raw, not {prompt!r}")
        overrides = {k: v for k, v in (("device", device), ("dtype", dtype)) if v}
        self.prompt_mode = prompt
        self.spec = self.directions = None
        if run is not None:
            from workbench.experiment.rundir import RunDir

            folder = RunDir(Path(run)).require_finished()
            self.bridge = folder.load_model(**overrides)
            self.generation = folder.generation()
            self.prompt_cfg = folder.prompt()
            if parse_bool(str(steer)):
                self.spec, self.directions = folder.steering(), folder.directions()
        else:
            self.bridge = load_model(ModelConfig(name=str(model), **overrides))
            self.generation, self.prompt_cfg = GenerationConfig(), PromptConfig()
        if batch_size not in (None, "auto"):
            self.generation = replace(self.generation, batch_size=int(batch_size))
        if max_new_tokens is not None:
            self.generation = replace(self.generation, max_new_tokens=int(max_new_tokens))
        # the token cap: max_new_tokens, else the run's (as `als generate`), else the task's
        self.cap_is_set = max_new_tokens is not None or run is not None
        self.tokenizer = self.bridge.tokenizer

    @classmethod
    def create_from_arg_string(
        cls, arg_string: str, additional_config: dict | None = None
    ) -> ALSLM:
        """Only ``--model_args`` count: lm-eval's own ``--device`` (default cuda:0) and
        ``--batch_size`` (default 1) would silently override the run's settings."""
        from lm_eval.utils import simple_parse_args_string

        return cls(**simple_parse_args_string(arg_string))

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None) -> ALSLM:
        return cls(**arg_dict)

    # -- hooks ----------------------------------------------------------------------------------
    def _steering(self) -> contextlib.AbstractContextManager[Any]:
        if self.spec is None:
            return contextlib.nullcontext()
        from workbench.core.steering import steer

        return steer(self.bridge, self.spec, self.directions)

    # -- prompts --------------------------------------------------------------------------------
    def _encode_contexts(self, contexts: Sequence[str]) -> list[list[int]]:
        if self.prompt_mode == "workbench":
            return encode_prompts(self.tokenizer, contexts, self.prompt_cfg)
        return [self.tokenizer(c)["input_ids"] for c in contexts]

    # -- lm-eval's three request types ------------------------------------------------------------
    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        groups: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(json.dumps(request.args[1], sort_keys=True, default=str), []).append(
                i
            )
        out: list[str] = [""] * len(requests)
        for key, rows in groups.items():
            kwargs = json.loads(key)
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            cfg = self._generation_for(kwargs)
            prompts = self._encode_contexts([requests[i].args[0] for i in rows])
            bar = tqdm(total=len(rows), desc="als generate_until", disable=disable_tqdm)
            with self._steering():
                # batch by batch, as `decode` would, so that lm-eval's request cache (its
                # resume) is written as each batch finishes
                for lo in range(0, len(rows), cfg.batch_size):
                    chunk = rows[lo : lo + cfg.batch_size]
                    completions = decode(
                        self.bridge,
                        prompts[lo : lo + cfg.batch_size],
                        cfg,
                        stop=self._stop(until),
                        indices=range(lo, lo + len(chunk)),
                    )
                    for i, completion in zip(chunk, completions, strict=True):
                        out[i] = _cut(completion.text, until)
                        self.cache_hook.add_partial("generate_until", requests[i].args, out[i])
                    bar.update(len(chunk))
            bar.close()
        return out

    def _generation_for(self, kwargs: dict[str, Any]) -> GenerationConfig:
        cfg = self.generation
        if "max_gen_toks" in kwargs and not self.cap_is_set:
            cfg = replace(cfg, max_new_tokens=int(kwargs["max_gen_toks"]))
        if parse_bool(str(kwargs.get("do_sample", False))):
            cfg = replace(cfg, do_sample=True, temperature=float(kwargs.get("temperature", 1.0)))
        return cfg

    def _stop(self, until: Sequence[str]) -> Callable[[str], bool]:
        at_answer = self.prompt_mode == "workbench"

        def stop(text: str) -> bool:
            return (at_answer and answer_complete(text)) or any(u and u in text for u in until)

        return stop

    def _continuation_logprobs(
        self, context: list[int], continuation: list[int]
    ) -> tuple[float, bool]:
        """Sum of log p(continuation | context) and whether greedy decoding gives it, from one
        uncached forward pass; the continuation counts as generated text for the hooks (the
        caller holds the steering context)."""
        ids = torch.tensor([context + continuation], device=self.bridge.cfg.device)
        with teacher_forced(self.bridge, 1, len(context)):
            logits = self.bridge(ids, return_type="logits")[0, len(context) - 1 : -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        target = torch.tensor(continuation, device=logprobs.device)
        total = float(logprobs.gather(1, target[:, None]).sum())
        return total, bool((logprobs.argmax(-1) == target).all())

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple]:
        results = []
        with self._steering():  # hooks added once for all requests
            for request in requests:
                context, continuation = request.args
                if self.prompt_mode == "workbench" and context:
                    ctx = self._encode_contexts([context])[0]
                else:
                    ctx = self.tokenizer(context)["input_ids"] if context else []
                cont = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
                if not ctx:
                    ctx = [self._prefix_token()]
                results.append(self._continuation_logprobs(ctx, cont))
                self.cache_hook.add_partial("loglikelihood", request.args, results[-1])
        return results

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list:
        results = []
        limit = int(self.bridge.cfg.n_ctx)
        with self._steering():
            for request in requests:
                tokens = self.tokenizer(request.args[0], add_special_tokens=False)["input_ids"]
                if len(tokens) + 1 > limit:
                    raise WorkbenchError(
                        f"a {len(tokens)}-token document exceeds the model's context ({limit}); "
                        "rolling windows are not implemented"
                    )
                results.append(self._continuation_logprobs([self._prefix_token()], tokens)[0])
        return results

    def _prefix_token(self) -> int:
        tok = self.tokenizer
        prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if prefix is None:
            raise WorkbenchError("the tokenizer has neither a BOS nor an EOS token to condition on")
        return int(prefix)

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "als")).replace("/", "__")


def main() -> None:
    """lm-eval's command line, with the ``als`` model registered."""
    import sys

    from lm_eval.__main__ import cli_evaluate

    try:
        cli_evaluate()
    except WorkbenchError as exc:
        sys.exit(f"als (lm-eval): error: {exc}")


if __name__ == "__main__":
    main()
