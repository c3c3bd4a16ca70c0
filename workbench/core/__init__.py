"""The library core: the science of ALS, with no run folders and no command line.

Decoding (`generation`, `kv_cache`), hook names (`hooks`), interventions (`steering`), residual
caching (`activations`), directions (`directions`, pure tensor math), probes (`probing`), token
cosines and drift (`projection`), the gate's threshold and the pick (`selection`), next-token
effects (`effects`), prompts and grading (`prompts`, `grading`, `problems`), statistics and typed
records (`evaluation`, `records`), config checks (`config`), devices (`runtime`) and the file
formats of rows and settings (`artifacts`). Nothing here imports a layer above it.
"""
