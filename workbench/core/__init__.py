"""The science of ALS, with no run folders and no command line; decoding is the engine's
(`workbench.engine`).

The steering specification and its resolution against a model (`steering`), residual caching
(`activations`) and states recorded while decoding (`recording`), directions (`directions`, pure
tensor math), probes (`probing`), the directions and probes of sampled chains (`contrast`,
`contrast_probes`), routing by a score (`routing`), token cosines and drift (`projection`), the
gate's threshold and the pick (`selection`), next-token effects (`effects`), prompts and grading
(`prompts`, `json_answer`, `grading`, `problems`), statistics and typed records (`evaluation`,
`records`) and the file formats of rows and settings (`artifacts`). Nothing here imports a layer
above it.
"""
